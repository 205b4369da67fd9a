package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"github.com/patchbay/patchbay/agent/enroll"
	"github.com/patchbay/patchbay/agent/identity"
	"github.com/patchbay/patchbay/agent/service"
	"github.com/spf13/cobra"
)

func newServiceCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "service",
		Short: "Install, remove or inspect the agent's system service",
		Long: `Install patchbay-agent as a system service, remove it, or show its state.

  Linux    systemd unit ` + service.SystemdUnitPath + `
  macOS    LaunchDaemon ` + service.LaunchdPath + `
  Windows  service "` + service.Name + `" of the service manager, restarted on failure

The service runs "patchbay-agent run --data DIR". Run these commands as root
(Administrator on Windows).`,
		Example: `  sudo patchbay-agent service install --copy-binary --server https://relay.example.com:8443 \
      --token pbe_... --ca-fingerprint sha256:3f1c...
  sudo patchbay-agent service status
  sudo patchbay-agent service uninstall`,
	}
	cmd.AddCommand(newServiceInstallCmd(), newServiceUninstallCmd(), newServiceStatusCmd())
	return cmd
}

// serviceFlags are the flags every service subcommand shares.
type serviceFlags struct {
	root, data string
}

func (sf *serviceFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&sf.root, "root", "", "work on the system installed in this directory instead of /: write the files only, call no service manager (image builders, tests; not on Windows)")
	f.StringVar(&sf.data, "data", defaultDataDir(), dataHelp+" as the service sees it (under --root)")
}

func (sf *serviceFlags) options(cmd *cobra.Command) service.Options {
	return service.Options{Root: sf.root, DataDir: sf.data, Out: cmd.OutOrStdout()}
}

func newServiceInstallCmd() *cobra.Command {
	var (
		sf         serviceFlags
		o          enroll.Options
		servers    []string
		tagArgs    []string
		tokenFile  string
		trustFile  string
		bin        string
		copyBinary bool
		noStart    bool
	)
	cmd := &cobra.Command{
		Use:   "install [--copy-binary] [--server URL --token TOKEN --ca-fingerprint SHA256:...]",
		Short: "Install the agent as a service, enroll it if asked, and start it",
		Long: `Install the agent as a system service that starts at boot and now.

--copy-binary copies this patchbay-agent to ` + service.DefaultBinary("linux") + ` (` + service.DefaultBinary("windows") + `
on Windows) and has the service run that copy; without it the service runs
--bin, default this binary where it is.

With --server, --token (or --token-file, or env ` + envToken + `) and --ca-fingerprint,
the machine is enrolled first, exactly as "patchbay-agent enroll" does (the
relay's CA is pinned by the fingerprint); otherwise it must be enrolled already.

--no-start installs and enables the service without starting it. --root DIR
installs into a directory tree (an image being built, a test) and calls no
service manager; the systemd unit is enabled offline, as systemctl --root does.
Where systemd is not running (a container), use --no-start and run
"patchbay-agent run" in the foreground, with the unit's ExecStart arguments.

Installing again replaces the unit or plist and restarts the service.`,
		Example: `  sudo patchbay-agent service install --copy-binary --server https://relay.example.com:8443 \
      --token pbe_Wq3... --ca-fingerprint sha256:3f1c...e9 --tags role=kiosk
  sudo patchbay-agent service install                  # already enrolled, run this binary
  patchbay-agent service install --copy-binary --root /tmp/image --no-start`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts := sf.options(cmd)
			opts.Start = !noStart && sf.root == ""
			self, err := os.Executable()
			if err != nil {
				return fmt.Errorf("service install: find this binary: %w", err)
			}
			switch {
			case copyBinary:
				opts.CopyFrom = self
				opts.Binary = service.DefaultBinary(runtime.GOOS)
				if bin != "" {
					opts.Binary = bin
				}
			case bin != "":
				opts.Binary = bin
			case sf.root != "":
				return errors.New("service install: with --root, give --copy-binary or --bin (the path the service runs, inside the root)")
			default:
				opts.Binary = self
			}
			dataOnDisk := sf.data
			if sf.root != "" {
				dataOnDisk = filepath.Join(sf.root, sf.data)
			}
			if len(servers) == 0 {
				if _, err := os.Stat(filepath.Join(dataOnDisk, identity.ConfigFile)); err != nil {
					return fmt.Errorf("service install: %s is not enrolled (%v): give --server, --token and --ca-fingerprint, or run patchbay-agent enroll first", dataOnDisk, err)
				}
				return service.Install(cmd.Context(), opts)
			}
			if err := service.Preflight(opts); err != nil {
				return err
			}
			o.Dir = dataOnDisk
			id, err := enrollWith(cmd, o, servers, tagArgs, tokenFile, trustFile)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Enrolled as agent %s with %s\n", id.AgentID, id.ServerURL)
			if err := service.Install(cmd.Context(), opts); err != nil {
				return fmt.Errorf("enrolled as agent %s, but the service is not installed (fix this, then run patchbay-agent service install again without --server): %w", id.AgentID, err)
			}
			return nil
		},
	}
	sf.register(cmd)
	f := cmd.Flags()
	f.StringVar(&bin, "bin", "", "the agent binary the service runs (default: with --copy-binary the standard path, else this binary)")
	f.BoolVar(&copyBinary, "copy-binary", false, "copy this binary to the standard path ("+service.DefaultBinary(runtime.GOOS)+") and run that")
	f.BoolVar(&noStart, "no-start", false, "install and enable the service but do not start it now")
	f.StringArrayVar(&servers, "server", nil, "enroll first with this relay URL (repeatable for a tier, as for enroll)")
	f.StringVar(&o.Token, "token", "", "with --server: enrollment token (or env "+envToken+", or --token-file)")
	f.StringVar(&tokenFile, "token-file", "", `with --server: read the enrollment token from this file ("-" for standard input)`)
	f.StringVar(&o.CAFingerprint, "ca-fingerprint", "", "with --server: fingerprint of the relay's CA, sha256:<64 hex digits>")
	f.StringArrayVar(&tagArgs, "tags", nil, "with --server: this agent's own tags, k=v[,k=v...]")
	f.StringVar(&o.Hostname, "hostname", "", "with --server: name to report instead of this machine's host name")
	f.BoolVar(&o.Force, "force", false, "with --server: replace an existing enrollment")
	f.StringVar(&trustFile, "trust", "", "with --server: OpenSSH allowed_signers file of the people whose signed plugins and scripts this agent runs")
	cmd.MarkFlagsRequiredTogether("server", "ca-fingerprint")
	return cmd
}

func newServiceUninstallCmd() *cobra.Command {
	var sf serviceFlags
	cmd := &cobra.Command{
		Use:   "uninstall",
		Short: "Stop the service and remove it",
		Long: `Stop the agent's service, disable it and remove its unit, plist or Windows
service. The binary and the data directory (the agent's identity) stay:
installing again brings the same agent back. To retire the machine, revoke the
agent on the relay (patchbay agents revoke) and delete the data directory.`,
		Example: `  sudo patchbay-agent service uninstall`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return service.Uninstall(cmd.Context(), sf.options(cmd))
		},
	}
	sf.register(cmd)
	return cmd
}

func newServiceStatusCmd() *cobra.Command {
	var sf serviceFlags
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show whether the service is installed, enabled and active",
		Long: `Print whether the agent's service is installed, enabled (started at boot) and
active (running), as the service manager reports it, and whether the data
directory holds an enrollment.`,
		Example: `  patchbay-agent service status`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := service.GetStatus(cmd.Context(), sf.options(cmd))
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "manager:   %s\n", st.Manager)
			fmt.Fprintf(w, "service:   %s\n", st.Where)
			fmt.Fprintf(w, "installed: %s\n", yesNo(st.Installed))
			fmt.Fprintf(w, "enabled:   %s\n", yesNo(st.Enabled))
			fmt.Fprintf(w, "active:    %s\n", st.Active)
			data := sf.data
			if sf.root != "" {
				data = filepath.Join(sf.root, sf.data)
			}
			enrolled := "no"
			if id, err := identity.Load(data); err == nil {
				enrolled = "yes, agent " + id.AgentID + " with " + id.ServerURL
			}
			fmt.Fprintf(w, "enrolled:  %s (%s)\n", enrolled, data)
			return nil
		},
	}
	sf.register(cmd)
	return cmd
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
