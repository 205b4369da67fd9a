package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// maxHops bounds how many symbolic links openBase follows for one base.
const maxHops = 8

// baseError says why a scope's base directory is not cleaned.
type baseError struct {
	status string // statusAbsent, statusSkipped or statusRefused
	msg    string
}

func (e *baseError) Error() string { return e.status + ": " + e.msg }

// Statuses of a target.
const (
	statusOK      = "ok"
	statusAbsent  = "absent"  // the base does not exist: nothing to do
	statusSkipped = "skipped" // deliberately left alone (not an error)
	statusRefused = "refused" // unsafe: counted as an error
)

// openBase opens the directory root/rel (rel uses the OS separator) as an
// *os.Root, checking every path component on the way down with Lstat:
//
//   - A component that is a symbolic link resolving outside root is refused.
//   - A link inside root is followed only if the directory holding it is
//     trusted (owned by the superuser and writable by nobody else, see
//     trustedDir): only an administrator chose it. A link a user planted
//     (~/.cache -> /etc) is skipped, never followed.
//   - The base itself must be a directory.
//
// Each step opens the next component through the previous *os.Root, which
// cannot leave it, and checks it is the directory Lstat saw, so a component
// swapped for a link mid-way fails instead of redirecting the clean.
func openBase(root, rel string) (*os.Root, string, error) {
	comps := splitRel(rel)
	for hop := 0; ; hop++ {
		r, path, redirect, err := walkBase(root, comps)
		if err != nil || redirect == "" {
			return r, path, err
		}
		if hop == maxHops {
			return nil, "", &baseError{statusRefused, fmt.Sprintf("%s: more than %d symbolic links", filepath.Join(root, rel), maxHops)}
		}
		comps = splitRel(redirect)
	}
}

// walkBase opens root/comps one component at a time. When it meets a
// symbolic link it may follow, it returns the new path relative to root in
// redirect and the caller starts again from root.
func walkBase(root string, comps []string) (r *os.Root, path, redirect string, err error) {
	cur, err := os.OpenRoot(root)
	if err != nil {
		return nil, "", "", fmt.Errorf("open %s: %w", root, err)
	}
	path = root
	for i, c := range comps {
		next := filepath.Join(path, c)
		fi, err := cur.Lstat(c)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			cur.Close()
			return nil, "", "", &baseError{statusAbsent, next + " does not exist"}
		case err != nil:
			cur.Close()
			return nil, "", "", fmt.Errorf("lstat %s: %w", next, err)
		case fi.Mode()&fs.ModeSymlink != 0:
			redirect, err := followLink(cur, root, path, c, comps[i+1:])
			cur.Close()
			return nil, "", redirect, err
		case !fi.IsDir():
			cur.Close()
			return nil, "", "", &baseError{statusRefused, next + " is not a directory"}
		}
		sub, err := cur.OpenRoot(c)
		cur.Close()
		if err != nil {
			return nil, "", "", fmt.Errorf("open %s: %w", next, err)
		}
		if st, err := sub.Stat("."); err != nil || !os.SameFile(fi, st) {
			sub.Close()
			return nil, "", "", &baseError{statusRefused, next + " changed while it was being opened"}
		}
		cur, path = sub, next
	}
	return cur, path, "", nil
}

// followLink decides about the link name in the directory dir (open as
// parent, at path dir). rest is what follows the link in the base path. It
// returns the path to restart from, relative to root, or why not.
func followLink(parent *os.Root, root, dir, name string, rest []string) (string, error) {
	link := filepath.Join(dir, name)
	target, err := parent.Readlink(name)
	if err != nil {
		return "", fmt.Errorf("readlink %s: %w", link, err)
	}
	dest := target
	if !filepath.IsAbs(dest) {
		dest = filepath.Join(dir, dest)
	}
	dest = filepath.Join(append([]string{dest}, rest...)...)
	rel, ok := within(root, dest)
	if !ok {
		return "", &baseError{statusRefused, fmt.Sprintf("%s is a symbolic link to %s, outside root %s", link, target, root)}
	}
	pfi, err := parent.Stat(".")
	if err != nil {
		return "", fmt.Errorf("stat %s: %w", dir, err)
	}
	if !trustedDir(pfi) {
		return "", &baseError{statusSkipped, fmt.Sprintf("%s is a symbolic link to %s in a directory other users can change; not followed", link, target)}
	}
	return rel, nil
}

// within reports whether path p is root or below it, and returns p
// relative to root.
func within(root, p string) (string, bool) {
	rel, err := filepath.Rel(root, p)
	if err != nil || filepath.IsAbs(rel) || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", false
	}
	return rel, true
}

// splitRel splits a relative path into its components, dropping "." ones.
func splitRel(rel string) []string {
	var comps []string
	for _, c := range strings.Split(filepath.Clean(rel), string(filepath.Separator)) {
		if c != "" && c != "." {
			comps = append(comps, c)
		}
	}
	return comps
}
