package sshd

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/pkg/sftp"
)

// sftpJob is the sftp subsystem served in the agent's own process (when
// sessions run as the agent's account).
type sftpJob struct {
	srv  *sftp.Server
	ch   io.Closer
	once sync.Once
}

func newSFTPJob(ch activityRW, dir string) (*sftpJob, error) {
	srv, err := sftp.NewServer(ch, sftp.WithServerWorkingDirectory(dir))
	if err != nil {
		return nil, err
	}
	return &sftpJob{srv: srv, ch: ch.Channel}, nil
}

// serve runs until the client ends the subsystem or stop closes the channel.
func (j *sftpJob) serve() exitStatus {
	if err := j.srv.Serve(); err != nil && !errors.Is(err, io.EOF) {
		return exitStatus{code: 1}
	}
	return exitStatus{}
}

func (j *sftpJob) stop()           { j.once.Do(func() { _ = j.ch.Close() }) }
func (j *sftpJob) resize(int, int) {}
func (j *sftpJob) signal(string) error {
	return errors.New("the sftp server takes no signals")
}

// The sftp server child: when sessions run as another user, the agent runs its
// own executable again under that user's credential, with argv[0]
// sftpChildArg0 and sftpChildEnv=1, and the child serves sftp on its stdin and
// stdout in its working directory. Requiring both markers keeps an inherited
// environment variable alone from turning a program into an sftp server.
const (
	sftpChildArg0 = "patchbay-sftp-server"
	sftpChildEnv  = "PATCHBAY_SSHD_SFTP_CHILD"
)

func init() {
	if len(os.Args) > 0 && os.Args[0] == sftpChildArg0 && os.Getenv(sftpChildEnv) == "1" {
		os.Exit(sftpChildMain())
	}
}

// sftpChildMain serves sftp on stdin/stdout and returns the exit code.
func sftpChildMain() int {
	srv, err := sftp.NewServer(stdio{os.Stdin, os.Stdout})
	if err != nil {
		_, _ = os.Stderr.WriteString("patchbay-sftp-server: " + err.Error() + "\n")
		return 1
	}
	if err := srv.Serve(); err != nil && !errors.Is(err, io.EOF) {
		_, _ = os.Stderr.WriteString("patchbay-sftp-server: " + err.Error() + "\n")
		return 1
	}
	return 0
}

type stdio struct {
	io.Reader
	io.WriteCloser
}

// sftpExecutable is the program run as the sftp child; tests replace it.
var sftpExecutable = os.Executable

// sftpChildSpec is the process spec of the sftp child.
func sftpChildSpec() (procSpec, error) {
	exe, err := sftpExecutable()
	if err != nil {
		return procSpec{}, fmt.Errorf("find the agent executable: %w", err)
	}
	return procSpec{path: exe, args: []string{sftpChildArg0}, extraEnv: []string{sftpChildEnv + "=1"}}, nil
}
