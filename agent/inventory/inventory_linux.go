//go:build linux

package inventory

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"syscall"
)

// osVersion returns PRETTY_NAME from os-release and the kernel release, as
// "Debian GNU/Linux 12 (bookworm) (Linux 6.1.0-18-amd64)". Either half may be
// missing; both missing is an error.
func (c *Collector) osVersion(context.Context) (string, error) {
	var name string
	var errs []error
	for _, p := range []string{"/etc/os-release", "/usr/lib/os-release"} {
		data, err := os.ReadFile(c.path(p))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		name = prettyName(parseOSRelease(data))
		break
	}
	kernelFn := c.kernel
	if kernelFn == nil {
		kernelFn = unameRelease
	}
	kernel, err := kernelFn()
	if err != nil {
		errs = append(errs, err)
	}
	switch {
	case name != "" && kernel != "":
		return fmt.Sprintf("%s (Linux %s)", name, kernel), nil
	case name != "":
		return name, nil
	case kernel != "":
		return "Linux " + kernel, nil
	}
	return "", fmt.Errorf("os version: %w", errors.Join(errs...))
}

// unameRelease returns the kernel release from uname(2).
func unameRelease() (string, error) {
	var u syscall.Utsname
	if err := syscall.Uname(&u); err != nil {
		return "", fmt.Errorf("uname: %w", err)
	}
	return cstring(u.Release[:]), nil
}

// cstring converts a NUL-terminated C char array (int8 or uint8 depending on
// the architecture) to a string.
func cstring[T ~int8 | ~uint8](a []T) string {
	b := make([]byte, 0, len(a))
	for _, c := range a {
		if c == 0 {
			break
		}
		b = append(b, byte(c))
	}
	return string(b)
}

// users reads utmp, falling back to `who` when utmp is unusable or empty.
func (c *Collector) users(ctx context.Context) ([]string, error) {
	var utmpErr error
	for _, p := range []string{"/var/run/utmp", "/run/utmp"} {
		data, err := os.ReadFile(c.path(p))
		if err != nil {
			utmpErr = err
			continue
		}
		users, err := parseUtmp(data)
		if err != nil {
			utmpErr = fmt.Errorf("%s: %w", p, err)
			break
		}
		if len(users) > 0 {
			return users, nil
		}
		utmpErr = fmt.Errorf("%s: no logged-in users", p)
		break
	}
	out, err := c.command(ctx, "who")
	if err != nil {
		return nil, fmt.Errorf("users: %w; who: %w", utmpErr, err)
	}
	return parseWho(out), nil
}

// The glibc struct utmp on x86_64 and aarch64 (and other 64-bit glibc ports
// that keep 32-bit time fields in utmp for compatibility), 384 bytes:
//
//	offset size field
//	     0    2 ut_type      short (followed by 2 bytes of padding)
//	     4    4 ut_pid       pid_t
//	     8   32 ut_line      char[32], device name ("pts/0")
//	    40    4 ut_id        char[4]
//	    44   32 ut_user      char[32], user name, NUL-padded (not always terminated)
//	    76  256 ut_host      char[256]
//	   332    4 ut_exit      two shorts
//	   336    4 ut_session   int32
//	   340    8 ut_tv        int32 seconds, int32 microseconds
//	   348   16 ut_addr_v6   int32[4]
//	   364   20 reserved
//
// Integers are in the machine's byte order. musl does not maintain utmp.
const (
	utmpRecordSize = 384
	utmpUserOff    = 44
	utmpUserLen    = 32
	utmpUserProc   = 7 // USER_PROCESS
	utmpMaxType    = 9 // ACCOUNTING, the largest ut_type glibc defines
)

// parseUtmp returns the distinct, sorted user names of USER_PROCESS records.
// An incomplete trailing record (a file being written) is ignored; a record
// with an unknown type means the file is not in the expected layout.
func parseUtmp(data []byte) ([]string, error) {
	n := len(data) / utmpRecordSize
	if n == 0 && len(data) > 0 {
		return nil, fmt.Errorf("utmp: %d bytes is shorter than one %d-byte record", len(data), utmpRecordSize)
	}
	var users []string
	for i := range n {
		rec := data[i*utmpRecordSize : (i+1)*utmpRecordSize]
		typ := int16(binary.NativeEndian.Uint16(rec[0:2]))
		if typ < 0 || typ > utmpMaxType {
			return nil, fmt.Errorf("utmp: record %d has unknown type %d (not the glibc %d-byte layout?)", i, typ, utmpRecordSize)
		}
		if typ != utmpUserProc {
			continue
		}
		user := rec[utmpUserOff : utmpUserOff+utmpUserLen]
		if j := bytes.IndexByte(user, 0); j >= 0 {
			user = user[:j]
		}
		users = append(users, string(bytes.TrimSpace(user)))
	}
	return sortUnique(users), nil
}
