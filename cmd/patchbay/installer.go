package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/patchbay/patchbay/client"
	"github.com/patchbay/patchbay/internal/apiv1"
	"github.com/patchbay/patchbay/internal/installer"
	"github.com/patchbay/patchbay/internal/release"
	"github.com/patchbay/patchbay/plugins/signature"
	"github.com/spf13/cobra"
)

// envReleaseSigners names the default --allowed-signers file of agents installer.
const envReleaseSigners = "PATCHBAY_RELEASE_SIGNERS"

// releaseSignersFile is the default --allowed-signers file, next to the
// CLI's config.
const releaseSignersFile = "release_signers"

func (a *app) agentsInstallerCmd() *cobra.Command {
	var goos, arch, version, tagsFlag, site, ttl, signersFile, relayURL string
	cmd := &cobra.Command{
		Use:   "installer --os linux|windows|darwin [--arch amd64|arm64] [--version V] [--tags k=v,...] [--site SITE] [--ttl DUR]",
		Short: "Print a one-line installer that installs, enrolls and starts an agent",
		Long: `Print a one-line installer for one machine (admin role): paste it into a root
shell (Linux, macOS) or an Administrator PowerShell (Windows) on the machine.

It creates a fresh single-use enrollment token (--site, --tags, --ttl as for
patchbay tokens create), checks the release on the relay, and prints a line
that carries the relay URL, the token, the relay's pinned CA fingerprint, the
version, and the SHA-256 of the agent binary and of the install script. The
line downloads the install script from the relay (/install/) and runs it only
if its SHA-256 matches; the script downloads the agent binary from the relay
(/releases/) and runs it only if its SHA-256 matches; the agent then enrolls
over TLS pinned to the CA fingerprint and installs and starts its service
(patchbay-agent service install). A relay can make an install fail, but not
change what runs. The downloads themselves skip TLS verification (the CA is
private; the hashes protect them; they carry no secret).

The release (--version, default the newest the relay serves for --os and
--arch) must be signed: its SHA256SUMS.sig must verify for namespace
patchbay-release against --allowed-signers, the organisation's OpenSSH
allowed_signers file (default: $` + envReleaseSigners + `, else ` + releaseSignersFile + `
next to the CLI's config file). Unsigned or wrongly signed releases are
refused. Relays serve releases with patchbay-server serve --releases DIR.

The line goes to standard output, alone; what it does goes to standard error.
It contains the token: treat it as a secret until it is used or expires.`,
		Example: `  patchbay agents installer --os linux --allowed-signers org_signers
  patchbay agents installer --os windows --arch amd64 --site acme/paris --tags role=kiosk
  patchbay agents installer --os darwin --arch arm64 --version v1.4.0 --ttl 2h`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, err := installer.ScriptName(goos); err != nil || goos == "" {
				return usageErrorf(cmd, "--os %q: want linux, windows or darwin", goos)
			}
			if arch != "amd64" && arch != "arm64" {
				return usageErrorf(cmd, "--arch %q: want amd64 or arm64", arch)
			}
			if version != "" {
				if err := release.CheckVersion(version); err != nil {
					return usageErrorf(cmd, "--version: %v", err)
				}
			}
			tags, err := parseTags(tagsFlag)
			if err != nil {
				return usageErrorf(cmd, "--tags: %v", err)
			}
			if _, err := apiv1.ParseTTL(ttl, maxTTLSyntax); err != nil {
				return usageErrorf(cmd, "--ttl: %v", err)
			}
			if relayURL != "" {
				if relayURL, err = installer.CheckRelayURL(relayURL); err != nil {
					return usageErrorf(cmd, "--relay-url: %v", err)
				}
			}
			signers, signersPath, err := loadReleaseSigners(signersFile)
			if err != nil {
				return err
			}
			return a.withClient(func(c *client.Client) error {
				ctx := cmd.Context()
				if version == "" {
					if version, err = newestRelease(ctx, c, goos, arch); err != nil {
						return err
					}
				}
				agent, who, err := verifiedAgent(ctx, c, signers, signersPath, version, goos, arch, a)
				if err != nil {
					return err
				}
				// The relay must serve the very script whose hash the line carries.
				served, err := c.InstallScript(ctx, goos)
				if err != nil {
					return err
				}
				name, _ := installer.ScriptName(goos)
				if mine, _ := installer.Script(name); !bytes.Equal(served, mine) {
					return fmt.Errorf("agents installer: the relay serves another install script (%s) than this patchbay CLI knows: the relay and the CLI are different Patchbay versions; use a patchbay CLI of the relay's version", installer.PathPrefix+name)
				}
				uses := 1
				req := apiv1.EnrollTokenRequest{Tags: tags, Uses: &uses, TTL: ttl, Site: site}
				if len(tags) == 0 {
					req.Tags = nil
				}
				tok, err := c.CreateEnrollToken(ctx, req)
				if err != nil {
					return err
				}
				cfg := c.Config()
				if relayURL == "" {
					relayURL = cfg.Server
				}
				line, err := installer.OneLiner(installer.Params{
					Relay: relayURL, Token: tok.Token, CAFingerprint: cfg.CAFingerprint,
					Version: version, OS: goos, Arch: arch, AgentSHA256: agent.SHA256,
				})
				if err != nil {
					return err
				}
				fmt.Fprintln(a.stdout, line)
				where := "a root shell"
				if goos == "windows" {
					where = "an Administrator PowerShell"
				}
				fmt.Fprintf(a.stderr, "Installer for %s/%s, release %s (SHA256SUMS signed by %s, key %s), agent %s SHA-256 %s.\n",
					goos, arch, clean(version), clean(who.Principal), who.Fingerprint, agent.Name, agent.SHA256)
				fmt.Fprintf(a.stderr, "Enrollment token %s: 1 use, expires %s", clean(tok.ID), withRel(a.now(), &tok.ExpiresAt))
				if tok.Site != "" {
					fmt.Fprintf(a.stderr, ", site %s", clean(tok.Site))
				}
				if len(tok.Tags) > 0 {
					fmt.Fprintf(a.stderr, ", tags %s", clean(fmtTags(tok.Tags, ",")))
				}
				fmt.Fprintf(a.stderr, ".\nRun the line above in %s on the machine; it holds the token, keep it secret.\n", where)
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&goos, "os", "", "the target machine's OS: linux, windows or darwin (required)")
	f.StringVar(&arch, "arch", "amd64", "the target machine's architecture: amd64 or arm64")
	f.StringVar(&version, "version", "", "the release to install (default: the newest the relay serves for --os/--arch)")
	f.StringVar(&tagsFlag, "tags", "", "tags fixed on the agent by its token, k=v,k=v")
	f.StringVar(&site, "site", "", "the site the agent belongs to (default: default/default)")
	f.StringVar(&ttl, "ttl", "24h", "how long the line's token stays valid: 90m, 24h, 7d, ...")
	f.StringVar(&signersFile, "allowed-signers", "", "the organisation's allowed_signers file that release signatures must verify against (default: $"+envReleaseSigners+", else "+releaseSignersFile+" next to the CLI config)")
	f.StringVar(&relayURL, "relay-url", "", "the relay's URL as the machine reaches it, https://HOST:PORT (default: the one this CLI logged in to; same CA)")
	cmd.MarkFlagRequired("os")
	return cmd
}

// loadReleaseSigners reads --allowed-signers, or its default.
func loadReleaseSigners(flag string) (*signature.AllowedSigners, string, error) {
	path := flag
	if path == "" {
		path = os.Getenv(envReleaseSigners)
	}
	if path == "" {
		if cfg, err := client.ConfigPath(); err == nil {
			p := filepath.Join(filepath.Dir(cfg), releaseSignersFile)
			if _, err := os.Stat(p); err == nil {
				path = p
			}
		}
	}
	if path == "" {
		return nil, "", errors.New("agents installer: --allowed-signers FILE is required: the organisation's OpenSSH allowed_signers file that release signatures must verify against (or set $" + envReleaseSigners + ", or put it in " + releaseSignersFile + " next to the CLI config)")
	}
	s, err := signature.LoadAllowedSigners(path)
	if err != nil {
		return nil, "", fmt.Errorf("agents installer: --allowed-signers: %w", err)
	}
	return s, path, nil
}

// newestRelease picks the newest signed release that has an agent for
// goos/arch, in version order (numbers compared as numbers).
func newestRelease(ctx context.Context, c *client.Client, goos, arch string) (string, error) {
	list, err := c.Releases(ctx)
	if err != nil {
		return "", err
	}
	best := ""
	for _, r := range list {
		m := release.Manifest{Files: r.Files}
		if _, err := m.Lookup(release.AgentName(r.Version, goos, arch)); err != nil || !r.Signed {
			continue
		}
		if best == "" || versionLess(best, r.Version) {
			best = r.Version
		}
	}
	if best == "" {
		return "", fmt.Errorf("agents installer: the relay serves no signed release with an agent for %s/%s (%d releases): publish one with patchbay-server serve --releases DIR", goos, arch, len(list))
	}
	return best, nil
}

// versionLess orders version strings with runs of digits compared as
// numbers (v1.10.0 after v1.9.3; v1.4.0-3-gabc, git describe's later build,
// after v1.4.0).
func versionLess(a, b string) bool {
	for a != "" && b != "" {
		da, db := digits(a), digits(b)
		if da > 0 && db > 0 {
			na, nb := strings.TrimLeft(a[:da], "0"), strings.TrimLeft(b[:db], "0")
			if len(na) != len(nb) {
				return len(na) < len(nb)
			}
			if na != nb {
				return na < nb
			}
			a, b = a[da:], b[db:]
			continue
		}
		if a[0] != b[0] {
			return a[0] < b[0]
		}
		a, b = a[1:], b[1:]
	}
	return len(a) < len(b)
}

func digits(s string) int {
	n := 0
	for n < len(s) && s[n] >= '0' && s[n] <= '9' {
		n++
	}
	return n
}

// verifiedAgent fetches version's SHA256SUMS and signature from the relay,
// verifies them against signers and returns the agent's manifest line.
func verifiedAgent(ctx context.Context, c *client.Client, signers *signature.AllowedSigners, signersPath, version, goos, arch string, a *app) (release.File, signature.Signer, error) {
	fail := func(err error) (release.File, signature.Signer, error) {
		return release.File{}, signature.Signer{}, fmt.Errorf("agents installer: release %s: %w", version, err)
	}
	sums, err := c.ReleaseFile(ctx, version, release.SumsName, release.MaxSumsSize)
	if err != nil {
		return fail(err)
	}
	sig, err := c.ReleaseFile(ctx, version, release.SigName, signature.MaxSignatureSize)
	if client.IsStatus(err, http.StatusNotFound) {
		return fail(fmt.Errorf("unsigned (the relay has no %s): refusing to install it; sign SHA256SUMS with the organisation's key for namespace %s (ssh-keygen -Y sign -n %s) and put the signature next to it",
			release.SigName, signature.ReleaseNamespace, signature.ReleaseNamespace))
	}
	if err != nil {
		return fail(err)
	}
	m, who, err := release.Verify(sums, sig, signers, a.now())
	if err != nil {
		return fail(fmt.Errorf("%w: refusing to install it (allowed signers: %s)", err, signersPath))
	}
	f, err := m.Lookup(release.AgentName(version, goos, arch))
	if err != nil {
		return fail(fmt.Errorf("%w: the release has no agent for %s/%s", err, goos, arch))
	}
	return f, who, nil
}
