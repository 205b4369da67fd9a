package main

import (
	"fmt"
	"strings"
)

// consoleSessionUser is the --session-user value that, on Windows, runs
// sessions as the user logged in at the console.
const consoleSessionUser = "console"

// windowsSessionUser decides what --session-user NAME means on Windows.
// Windows starts a process as another account only with that account's
// token: without a password (LogonUser) the one token a LocalSystem service
// can get is that of a logged-in user (WTSQueryUserToken), so the agent
// supports exactly "console", the user at the console when a session
// starts, and refuses any other name, saying why.
func windowsSessionUser(name string) (console bool, err error) {
	switch {
	case name == "":
		return false, nil
	case strings.EqualFold(name, consoleSessionUser):
		return true, nil
	}
	return false, fmt.Errorf("--session-user %s is not supported on Windows: starting a process as a named account needs its password; "+
		"use --session-user console to run sessions as the user logged in at the console (the agent must run as LocalSystem), or leave it out", name)
}
