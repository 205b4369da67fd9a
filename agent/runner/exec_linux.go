package runner

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// maxExecs bounds the sealed executables kept open.
const maxExecs = 16

// execCache keeps each verified plugin as a sealed memfd: the bytes were
// checked when it was created, and sealing makes it immutable for the life
// of the agent, so nothing can change them between the check and any later
// exec. A launch executes /proc/self/fd/N: the child inherits the
// descriptor across fork, and execve resolves the path before close-on-exec
// closes it. Entries in use are never closed (their fd number could be
// reused by another file).
type execCache struct {
	mu sync.Mutex
	m  map[string]*execEntry
}

type execEntry struct {
	f    *os.File
	refs int
	used time.Time
}

func newExecCache() *execCache { return &execCache{m: map[string]*execEntry{}} }

func (c *execCache) has(sha string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.m[sha]
	return ok
}

// executable returns a path that executes exactly v's bytes and a release
// function to call once the process has started (or failed to).
func (r *Runner) executable(v verified) (string, func(), error) {
	c := r.execs
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[v.ref.SHA256]
	if !ok {
		if v.data == nil {
			return "", nil, errors.New("executable: not cached and no bytes given")
		}
		f, err := sealedMemfd(v.ref.Name, v.data)
		if err != nil {
			return "", nil, err
		}
		c.evict()
		e = &execEntry{f: f}
		c.m[v.ref.SHA256] = e
	}
	e.refs++
	e.used = time.Now()
	release := func() {
		c.mu.Lock()
		e.refs--
		c.mu.Unlock()
	}
	return fmt.Sprintf("/proc/self/fd/%d", e.f.Fd()), release, nil
}

// evict closes the least recently used idle entries beyond maxExecs-1.
func (c *execCache) evict() {
	for len(c.m) >= maxExecs {
		var oldest string
		for k, e := range c.m {
			if e.refs == 0 && (oldest == "" || e.used.Before(c.m[oldest].used)) {
				oldest = k
			}
		}
		if oldest == "" {
			return
		}
		c.m[oldest].f.Close()
		delete(c.m, oldest)
	}
}

func (c *execCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, e := range c.m {
		if e.refs == 0 {
			e.f.Close()
			delete(c.m, k)
		}
	}
}

func sealedMemfd(name string, data []byte) (*os.File, error) {
	fd, err := unix.MemfdCreate("patchbay-plugin-"+name, unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, fmt.Errorf("memfd: %w", err)
	}
	f := os.NewFile(uintptr(fd), "memfd:"+name)
	if _, err := f.Write(data); err != nil {
		f.Close()
		return nil, fmt.Errorf("memfd write: %w", err)
	}
	seals := unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE | unix.F_SEAL_SEAL
	if _, err := unix.FcntlInt(f.Fd(), unix.F_ADD_SEALS, seals); err != nil {
		f.Close()
		return nil, fmt.Errorf("memfd seal: %w", err)
	}
	return f, nil
}
