//go:build unix

package consent

import (
	"io/fs"
	"strconv"
	"syscall"
)

// statUID returns the owner of a file from its stat.
func statUID(st fs.FileInfo) (string, bool) {
	s, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return "", false
	}
	return strconv.FormatUint(uint64(s.Uid), 10), true
}
