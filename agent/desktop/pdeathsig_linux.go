package desktop

import "syscall"

// dieWithAgent makes x11vnc get SIGTERM when the agent dies: a VNC server
// of a session must never outlive the agent that would stop it (a killed
// agent otherwise left x11vnc running, in its own process group, with the
// session's password). SIGTERM rather than SIGKILL: x11vnc exits on it after
// removing its MIT-SHM segments, which a SIGKILL leaves behind for good (about
// 40 per killed session, until the machine runs out of System V shared memory
// and no X client can start). The signal is tied to the OS thread that forked
// x11vnc: startX11VNC starts and waits for it on a goroutine locked to its
// thread, so that thread lives as long as x11vnc.
func dieWithAgent(a *syscall.SysProcAttr) { a.Pdeathsig = syscall.SIGTERM }
