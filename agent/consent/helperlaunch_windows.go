package consent

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/windows"
)

// Windows: the agent service runs in session 0, which has no desktop the
// user sees. It launches `patchbay-agent helper --stdio` in each session the
// policy asks (the active console session; with ask "all", every active
// session) with that session's user token (WTSQueryUserToken +
// CreateProcessAsUser, on the interactive desktop winsta0\default), and
// speaks the helper protocol over the child's stdin and stdout. Nothing
// listens, so no other process can pose as a helper, and the user is the
// one whose token the service used. A helper that exits is launched again.
//
// Written against the documented APIs and vetted, but not run: Windows
// binaries cannot be started on the machines this project is tested on.
// The protocol and everything behind attach is the tested portable code.

// launchEvery is how often the launcher looks for sessions without a helper.
const launchEvery = 5 * time.Second

// startLauncher starts the launch loop; close stops it, ends the helpers and
// waits.
func (h *helperServer) startLauncher() error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("helper backend: find the agent's executable: %w", err)
	}
	h.wg.Add(1)
	go h.launchLoop(exe)
	return nil
}

// launched is a helper process the service started.
type launched struct {
	process windows.Handle
	rw      io.ReadWriteCloser
	done    chan struct{} // closed when the process has exited and attach returned
}

func (h *helperServer) launchLoop(exe string) {
	defer h.wg.Done()
	running := map[uint32]*launched{}
	defer func() {
		for _, l := range running {
			_ = windows.TerminateProcess(l.process, 1)
			l.rw.Close()
			<-l.done
			windows.CloseHandle(l.process)
		}
	}()
	for {
		for id, l := range running {
			select {
			case <-l.done:
				windows.CloseHandle(l.process)
				delete(running, id)
			default:
			}
		}
		for _, id := range h.launchSessions() {
			if running[id] != nil {
				continue
			}
			l, err := h.launch(exe, id)
			if err != nil {
				h.log.Warn().Err(err).Uint32("wts_session", id).Msg("consent: could not start the helper in the user's session")
				continue
			}
			running[id] = l
		}
		select {
		case <-h.closing:
			return
		case <-time.After(launchEvery):
		}
	}
}

// launchSessions lists the sessions that should have a helper.
func (h *helperServer) launchSessions() []uint32 {
	if h.c.policy.Ask != AskAll {
		id := windows.WTSGetActiveConsoleSessionId()
		if id == 0xFFFFFFFF || id == 0 {
			return nil
		}
		return []uint32{id}
	}
	var infos *windows.WTS_SESSION_INFO
	var n uint32
	if err := windows.WTSEnumerateSessions(0, 0, 1, &infos, &n); err != nil {
		return nil
	}
	defer windows.WTSFreeMemory(uintptr(unsafe.Pointer(infos)))
	var ids []uint32
	for _, s := range unsafe.Slice(infos, n) {
		if s.SessionID != 0 && s.State == windows.WTSActive {
			ids = append(ids, s.SessionID)
		}
	}
	return ids
}

// launch starts the helper in session id as that session's user, with
// pipes for its stdin and stdout, and attaches to it.
func (h *helperServer) launch(exe string, id uint32) (*launched, error) {
	var tok windows.Token
	if err := windows.WTSQueryUserToken(id, &tok); err != nil {
		return nil, fmt.Errorf("user token of session %d: %w", id, err)
	}
	defer tok.Close()
	tu, err := tok.GetTokenUser()
	if err != nil {
		return nil, fmt.Errorf("user of session %d: %w", id, err)
	}
	account, domain, _, err := tu.User.Sid.LookupAccount("")
	if err != nil {
		return nil, fmt.Errorf("account of session %d: %w", id, err)
	}
	user := account
	if domain != "" {
		user = domain + `\` + account
	}
	var env *uint16
	if err := windows.CreateEnvironmentBlock(&env, tok, false); err != nil {
		return nil, fmt.Errorf("environment of session %d: %w", id, err)
	}
	defer windows.DestroyEnvironmentBlock(env)

	// Two pipes; the child's ends are inheritable, ours are not.
	sa := &windows.SecurityAttributes{InheritHandle: 1}
	sa.Length = uint32(unsafe.Sizeof(*sa))
	var childIn, ourOut, ourIn, childOut windows.Handle
	if err := windows.CreatePipe(&childIn, &ourOut, sa, 0); err != nil {
		return nil, err
	}
	if err := windows.CreatePipe(&ourIn, &childOut, sa, 0); err != nil {
		windows.CloseHandle(childIn)
		windows.CloseHandle(ourOut)
		return nil, err
	}
	_ = windows.SetHandleInformation(ourOut, windows.HANDLE_FLAG_INHERIT, 0)
	_ = windows.SetHandleInformation(ourIn, windows.HANDLE_FLAG_INHERIT, 0)
	closeChild := func() { windows.CloseHandle(childIn); windows.CloseHandle(childOut) }

	si := &windows.StartupInfo{Flags: windows.STARTF_USESTDHANDLES, StdInput: childIn, StdOutput: childOut, StdErr: childOut}
	si.Cb = uint32(unsafe.Sizeof(*si))
	si.Desktop = windows.StringToUTF16Ptr(`winsta0\default`)
	cmdline := windows.StringToUTF16Ptr(windows.EscapeArg(exe) + " helper --stdio --session " + wtsSession(id) + " --log-format json")
	var pi windows.ProcessInformation
	err = windows.CreateProcessAsUser(tok, windows.StringToUTF16Ptr(exe), cmdline, nil, nil, true,
		windows.CREATE_UNICODE_ENVIRONMENT|windows.CREATE_NO_WINDOW, env, nil, si, &pi)
	closeChild()
	if err != nil {
		windows.CloseHandle(ourOut)
		windows.CloseHandle(ourIn)
		return nil, fmt.Errorf("start the helper in session %d as %s: %w", id, user, err)
	}
	windows.CloseHandle(pi.Thread)
	rw := &pipeConn{r: os.NewFile(uintptr(ourIn), "helper-stdout"), w: os.NewFile(uintptr(ourOut), "helper-stdin")}
	l := &launched{process: pi.Process, rw: rw, done: make(chan struct{})}
	h.log.Info().Uint32("wts_session", id).Str("user", user).Msg("consent: started the helper in the user's session")
	h.wg.Add(1)
	go func() { // owned by the launch loop, which waits on done
		defer h.wg.Done()
		defer close(l.done)
		exited := make(chan struct{})
		go func() {
			_, _ = windows.WaitForSingleObject(pi.Process, windows.INFINITE)
			rw.Close() // unblocks attach's read
			close(exited)
		}()
		h.attach(rw, user, tu.User.Sid.String(), wtsSession(id))
		_ = windows.TerminateProcess(pi.Process, 1)
		<-exited
	}()
	return l, nil
}

// pipeConn is the two pipes of a launched helper as one connection.
type pipeConn struct {
	r, w *os.File
	once sync.Once
}

func (p *pipeConn) Read(b []byte) (int, error)  { return p.r.Read(b) }
func (p *pipeConn) Write(b []byte) (int, error) { return p.w.Write(b) }
func (p *pipeConn) Close() error {
	p.once.Do(func() { p.r.Close(); p.w.Close() })
	return nil
}
