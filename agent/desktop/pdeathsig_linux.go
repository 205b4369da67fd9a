package desktop

import "syscall"

// dieWithAgent makes x11vnc get SIGKILL when the agent dies: a VNC server
// of a session must never outlive the agent that would stop it (a killed
// agent otherwise left x11vnc running, in its own process group, with the
// session's password). The agent never locks goroutines to OS threads, so
// the thread that started it lives as long as the agent.
func dieWithAgent(a *syscall.SysProcAttr) { a.Pdeathsig = syscall.SIGKILL }
