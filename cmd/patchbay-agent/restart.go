package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/rs/zerolog"
)

// envRestart overrides how the agent restarts after a self-update:
// "exit" (exit with upgrade.ExitRestart for the service manager to start
// it again) or "exec" (start the new binary itself).
const envRestart = "PATCHBAY_AGENT_RESTART"

// errRestartExit makes main exit with upgrade.ExitRestart.
var errRestartExit = errors.New("exit for the service manager to restart the agent")

// executable is the agent's own binary, symlinks resolved: the file a
// self-update replaces.
func executable() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("find the agent's executable: %w", err)
	}
	if r, err := filepath.EvalSymlinks(exe); err == nil {
		exe = r
	}
	return exe, nil
}

// restartAgent starts exe (just swapped in, or restored) in place of this
// process. Under a service manager (systemd, launchd, the Windows service
// manager) the agent exits with upgrade.ExitRestart and the manager starts
// it again; otherwise (a foreground run, tests) it re-executes itself with
// the same arguments.
func restartAgent(exe string, log zerolog.Logger) error {
	mode := os.Getenv(envRestart)
	if mode == "" {
		mode = "exec"
		if underServiceManager() {
			mode = "exit"
		}
	}
	switch mode {
	case "exit":
		log.Info().Msg("exiting for the service manager to start the new binary")
		return errRestartExit
	case "exec":
		log.Info().Str("exe", exe).Msg("restarting into the new binary")
		if err := reexec(exe); err != nil {
			return fmt.Errorf("restart into %s after a self-update: %w (start the agent again)", exe, err)
		}
		return nil
	default:
		return fmt.Errorf("%s=%q: want exit or exec", envRestart, mode)
	}
}

// underServiceManager reports whether systemd (INVOCATION_ID), launchd
// (XPC_SERVICE_NAME of a job) or the Windows service manager runs the agent.
func underServiceManager() bool {
	if os.Getenv("INVOCATION_ID") != "" {
		return true
	}
	if n := os.Getenv("XPC_SERVICE_NAME"); n != "" && n != "0" {
		return true
	}
	return isWindowsService()
}
