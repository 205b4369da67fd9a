package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// maxErrs is how many error messages a target keeps for the details; the
// rest are only counted.
const maxErrs = 5

// tally counts what a clean found (Check) or did (Fix).
type tally struct {
	Files  int64 // files and links deleted, or that would be
	Bytes  int64 // their size
	Kept   int64 // entries spared: too young, sockets and other special files, hard links, other filesystems
	Errors int64
}

func (t *tally) add(o tally) {
	t.Files += o.Files
	t.Bytes += o.Bytes
	t.Kept += o.Kept
	t.Errors += o.Errors
}

// targetResult is the outcome for one target.
type targetResult struct {
	target
	path   string // the base directory
	status string // statusOK, statusAbsent, statusSkipped or statusRefused
	msg    string // why, when not ok
	total  tally
	parts  map[string]*tally // by target.part, when set
	errs   []string          // the first maxErrs error messages
}

func (r *targetResult) fail(msg string) {
	r.total.Errors++
	if len(r.errs) < maxErrs {
		r.errs = append(r.errs, msg)
	}
}

// cleaner walks one open base directory. Every file operation goes through
// base, an *os.Root, so nothing outside the base directory can be reached
// even if the tree changes during the walk; symbolic links are never
// followed (Lstat decides, and a link is deleted as a link).
type cleaner struct {
	ctx    context.Context
	base   *os.Root
	res    *targetResult
	cutoff time.Time // entries modified after it are kept
	apply  bool      // delete (Fix) or only count (Check)
	dev    uint64    // the base's filesystem: other filesystems are not entered
	hasDev bool
}

// cleanTarget counts (apply false) or deletes (apply true) what target t
// holds that is older than c.minAge. Problems are recorded in the result;
// the only error returned is the context's.
func cleanTarget(ctx context.Context, c config, t target, apply bool) (*targetResult, error) {
	res := &targetResult{target: t, path: filepath.Join(c.root, t.rel), status: statusOK}
	if t.part != nil {
		res.parts = map[string]*tally{}
	}
	base, path, err := openBase(c.root, t.rel)
	if err != nil {
		var be *baseError
		if !errors.As(err, &be) {
			be = &baseError{statusRefused, err.Error()}
		}
		res.status, res.msg = be.status, be.msg
		if be.status == statusRefused {
			res.fail(be.msg)
		}
		return res, ctx.Err()
	}
	defer base.Close()
	res.path = path
	cl := &cleaner{ctx: ctx, base: base, res: res, cutoff: c.now.Add(-c.minAge), apply: apply}
	if fi, err := base.Stat("."); err == nil {
		cl.dev, cl.hasDev = device(fi)
	}
	_, err = cl.walk(".")
	return res, err
}

// walk handles the entries of dir (relative to the base) and reports
// whether dir is, or would be, empty afterwards.
func (c *cleaner) walk(dir string) (bool, error) {
	f, err := c.base.Open(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return true, nil // vanished
	}
	if err != nil {
		c.fail(err)
		return false, nil
	}
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		c.fail(err)
		return false, nil
	}
	remaining := 0
	for _, name := range names {
		if err := c.ctx.Err(); err != nil {
			return false, err
		}
		gone, err := c.entry(dir, name)
		if err != nil {
			return false, err
		}
		if !gone {
			remaining++
		}
	}
	return remaining == 0, nil
}

// entry handles one entry of dir and reports whether it is, or would be,
// gone afterwards.
func (c *cleaner) entry(dir, name string) (bool, error) {
	p := filepath.Join(dir, name)
	t := c.res.target
	if dir == "." && t.keepTop != nil && t.keepTop(name) {
		c.res.total.Kept++
		return false, nil
	}
	fi, err := c.base.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return true, nil // vanished since the directory was read
	}
	if err != nil {
		c.fail(err)
		return false, nil
	}
	mode := fi.Mode()
	switch {
	case mode.IsDir():
		if t.flat {
			return false, nil
		}
		if dev, ok := device(fi); ok && c.hasDev && dev != c.dev {
			c.res.total.Kept++ // a mount point: another filesystem
			return false, nil
		}
		empty, err := c.walk(p)
		if err != nil || !empty {
			return false, err
		}
		// The age is the directory's before the walk: a directory
		// something wrote into recently stays even if it is now empty.
		if !c.old(fi) {
			c.res.total.Kept++
			return false, nil
		}
		return c.remove(p, nil), nil
	case mode.IsRegular() || mode&fs.ModeSymlink != 0:
		if t.flat && t.match != nil && !t.match(name) {
			return false, nil // not a cache file (apt's lock)
		}
		if mode.IsRegular() && linkCount(fi) > 1 {
			c.res.total.Kept++ // another name keeps the data: nothing to free
			return false, nil
		}
		if !c.old(fi) {
			c.res.total.Kept++
			return false, nil
		}
		return c.remove(p, fi), nil
	default:
		// Sockets, pipes, devices, and on Windows junctions: a program may
		// be using them, and deleting them frees nothing.
		c.res.total.Kept++
		return false, nil
	}
}

// old reports whether the entry was last modified at least min_age ago.
func (c *cleaner) old(fi fs.FileInfo) bool { return !fi.ModTime().After(c.cutoff) }

// remove deletes p (a file or link described by fi, or an empty directory
// when fi is nil) and counts it. It reports whether p is gone.
func (c *cleaner) remove(p string, fi fs.FileInfo) bool {
	if c.apply {
		err := c.base.Remove(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return true // someone else deleted it
		case err != nil && fi == nil && dirNotEmpty(err):
			return false // a file appeared in it meanwhile
		case err != nil:
			c.fail(err)
			return false
		}
	}
	if fi != nil {
		d := tally{Files: 1, Bytes: fi.Size()}
		c.res.total.add(d)
		if c.res.part != nil {
			name := c.res.part(p)
			if c.res.parts[name] == nil {
				c.res.parts[name] = &tally{}
			}
			c.res.parts[name].add(d)
		}
	}
	return true
}

// plainOps renames the *at system calls os.Root reports.
var plainOps = map[string]string{"removeat": "remove", "unlinkat": "remove", "openat": "open", "fstatat": "lstat"}

// fail records an error, naming the full path instead of the one relative
// to the base.
func (c *cleaner) fail(err error) {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		op := pe.Op
		if plain, ok := plainOps[op]; ok {
			op = plain
		}
		c.res.fail(fmt.Sprintf("%s %s: %v", op, filepath.Join(c.res.path, pe.Path), pe.Err))
		return
	}
	c.res.fail(err.Error())
}
