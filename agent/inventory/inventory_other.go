//go:build !linux

package inventory

import (
	"context"
	"fmt"
	"runtime"
	"strings"
)

// osVersion is best effort outside Linux: sw_vers on macOS ("macOS 14.5
// (23F79)"), `cmd /c ver` on Windows ("Microsoft Windows [Version
// 10.0.22631.3880]") and `uname -sr` elsewhere ("FreeBSD 14.1-RELEASE").
func (c *Collector) osVersion(ctx context.Context) (string, error) {
	switch runtime.GOOS {
	case "darwin":
		ver, err := c.command(ctx, "sw_vers", "-productVersion")
		if err != nil {
			return "", fmt.Errorf("sw_vers: %w", err)
		}
		s := "macOS " + strings.TrimSpace(string(ver))
		if name, err := c.command(ctx, "sw_vers", "-productName"); err == nil && strings.TrimSpace(string(name)) != "" {
			s = strings.TrimSpace(string(name)) + " " + strings.TrimSpace(string(ver))
		}
		if build, err := c.command(ctx, "sw_vers", "-buildVersion"); err == nil && strings.TrimSpace(string(build)) != "" {
			s += " (" + strings.TrimSpace(string(build)) + ")"
		}
		return s, nil
	case "windows":
		out, err := c.command(ctx, "cmd", "/c", "ver")
		if err != nil {
			return "", fmt.Errorf("ver: %w", err)
		}
		return strings.TrimSpace(string(out)), nil
	default:
		out, err := c.command(ctx, "uname", "-sr")
		if err != nil {
			return "", fmt.Errorf("uname: %w", err)
		}
		return strings.TrimSpace(string(out)), nil
	}
}

// users runs `query user` on Windows and `who` elsewhere.
func (c *Collector) users(ctx context.Context) ([]string, error) {
	if runtime.GOOS == "windows" {
		out, err := c.command(ctx, "query", "user")
		if err != nil && len(out) == 0 {
			// query exits with status 1 when nobody is logged on.
			return nil, fmt.Errorf("query user: %w", err)
		}
		return parseQueryUser(out), nil
	}
	out, err := c.command(ctx, "who")
	if err != nil {
		return nil, fmt.Errorf("who: %w", err)
	}
	return parseWho(out), nil
}
