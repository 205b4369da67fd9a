package main

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"time"

	"github.com/spf13/cobra"

	"github.com/patchbay/patchbay/client"
	buildversion "github.com/patchbay/patchbay/internal/version"
)

// versionInfo is what patchbay version -o json prints.
type versionInfo struct {
	Version string        `json:"version"`
	Go      string        `json:"go"`
	OS      string        `json:"os"`
	Arch    string        `json:"arch"`
	Relay   *relayVersion `json:"relay,omitempty"` // only when logged in and the relay answered
}

type relayVersion struct {
	Server  string `json:"server"`
	Version string `json:"version"`
}

// relayVersionTimeout bounds asking the relay: version must answer even
// when the relay is down.
const relayVersionTimeout = 5 * time.Second

func (a *app) versionCmd() *cobra.Command {
	var output outputFlag
	cmd := &cobra.Command{
		Use:   "version [-o table|json]",
		Short: "Print the CLI's version, and the relay's when logged in",
		Long: `Print this command's version as patchbay-agent version and patchbay-server version
do ("patchbay VERSION (GO, OS/ARCH)"), then, when you are logged in, the version of
the relay you are logged in to (asked with GET /v1/whoami; a relay that cannot be
reached is reported on standard error and the exit status stays 0).`,
		Example: "  patchbay version\n  patchbay version -o json",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			info := versionInfo{Version: fullVersion(), Go: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH}
			cfg, err := client.LoadConfig()
			switch {
			case errors.Is(err, client.ErrNotLoggedIn):
			case err != nil:
				fmt.Fprintf(a.stderr, "patchbay: relay version: %s\n", clean(err.Error()))
			default:
				if v, err := relayVersionOf(cmd.Context(), cfg); err != nil {
					fmt.Fprintf(a.stderr, "patchbay: relay version: %s\n", clean(err.Error()))
				} else {
					info.Relay = &relayVersion{Server: cfg.Server, Version: v}
				}
			}
			if output == formatJSON {
				return writeJSON(a.stdout, info)
			}
			fmt.Fprintf(a.stdout, "patchbay %s (%s, %s/%s)\n", info.Version, info.Go, info.OS, info.Arch)
			if info.Relay != nil {
				fmt.Fprintf(a.stdout, "relay %s: patchbay-server %s\n", clean(info.Relay.Server), clean(info.Relay.Version))
			}
			return nil
		},
	}
	addOutputFlag(cmd, &output)
	return cmd
}

// relayVersionOf asks the relay of cfg for its version.
func relayVersionOf(ctx context.Context, cfg client.Config) (string, error) {
	c, err := client.New(cfg)
	if err != nil {
		return "", err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, relayVersionTimeout)
	defer cancel()
	who, err := c.Whoami(ctx)
	if err != nil {
		return "", err
	}
	if who.ServerVersion == "" {
		return "unknown", nil
	}
	return who.ServerVersion, nil
}

// fullVersion is version, plus the VCS revision for development builds.
func fullVersion() string { return buildversion.Full(version) }
