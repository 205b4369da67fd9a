package e2e

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// progressEnv names a file descriptor, inherited through make and go test,
// for the lines saying which e2e test runs: go test keeps a package's output
// back until it ends (and drops it when it passes) unless -v, so .ci/run
// opens fd 3 on its own output (exec 3>&1) and sets PATCHBAY_E2E_PROGRESS_FD=3.
// Without it the lines go to stderr, seen with -v or when the package fails.
const progressEnv = "PATCHBAY_E2E_PROGRESS_FD"

// progress is where the lines go, chosen before TestMain starts anything.
var progress io.Writer = os.Stderr

func init() {
	v := os.Getenv(progressEnv)
	if v == "" {
		return
	}
	fd, err := strconv.Atoi(v)
	if err == nil && fd > 2 {
		// Only an inherited pipe, terminal or file open for writing: when the
		// descriptor was not passed down, the Go runtime may hold that number
		// itself (its epoll, or the cgroup CPU quota file it reads), which
		// must be neither written nor closed.
		var st syscall.Stat_t
		if err = syscall.Fstat(fd, &st); err == nil {
			flags, _, errno := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_GETFL, 0)
			switch st.Mode & syscall.S_IFMT {
			case syscall.S_IFIFO, syscall.S_IFCHR, syscall.S_IFREG, syscall.S_IFSOCK:
				if errno == 0 && flags&syscall.O_ACCMODE != syscall.O_RDONLY {
					syscall.CloseOnExec(fd) // the relays and agents the tests start do not hold it open
					progress = os.NewFile(uintptr(fd), "progress")
					return
				}
			}
			err = fmt.Errorf("descriptor %d is not a pipe, terminal or file open for writing: run with %d>&1", fd, fd)
		}
	} else if err == nil {
		err = fmt.Errorf("not a descriptor above stderr")
	}
	fmt.Fprintf(os.Stderr, "e2e: %s=%s: %v; progress lines go to stderr\n", progressEnv, v, err)
}

// announced holds the tests that printed their start line.
var announced sync.Map

// announce prints "e2e: TestX started" the first time a test starts a
// process (startProc calls it), and a line with its result and duration when
// it ends, after the processes it started are stopped. A subtest counts as
// its top-level test, unless that one started no process itself.
func announce(t *testing.T) {
	root, _, _ := strings.Cut(t.Name(), "/")
	if _, loaded := announced.LoadOrStore(root, true); loaded {
		return
	}
	start := time.Now()
	fmt.Fprintf(progress, "e2e: %s started\n", t.Name())
	t.Cleanup(func() {
		announced.Delete(root)
		result := "passed"
		if t.Failed() {
			result = "FAILED"
		} else if t.Skipped() {
			result = "skipped"
		}
		fmt.Fprintf(progress, "e2e: %s %s in %s\n", t.Name(), result, time.Since(start).Round(100*time.Millisecond))
	})
}
