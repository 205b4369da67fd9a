//go:build !windows

package main

// pseudoFS are filesystem types that hold no user data, or whose usage is
// meaningless (squashfs images are always full): they are not reported.
var pseudoFS = map[string]bool{
	"proc": true, "sysfs": true, "tmpfs": true, "devtmpfs": true, "devpts": true, "ramfs": true,
	"cgroup": true, "cgroup2": true, "securityfs": true, "debugfs": true, "tracefs": true,
	"configfs": true, "fusectl": true, "mqueue": true, "hugetlbfs": true, "pstore": true,
	"bpf": true, "autofs": true, "binfmt_misc": true, "rpc_pipefs": true, "nsfs": true,
	"efivarfs": true, "selinuxfs": true, "squashfs": true, "iso9660": true, "devfs": true,
	"fuse.gvfsd-fuse": true, "fuse.portal": true, "fuse.lxcfs": true, "fuse.snapfuse": true,
}

// realFS reports whether a filesystem type holds data worth reporting.
func realFS(fstype string) bool { return !pseudoFS[fstype] }
