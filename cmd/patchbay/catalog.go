package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/patchbay/patchbay/client"
	"github.com/patchbay/patchbay/internal/apiv1"
	"github.com/patchbay/patchbay/plugins/sdk"
	"github.com/patchbay/patchbay/plugins/signature"
)

// Environment variables of the sign commands.
const (
	envSigningKey        = "PATCHBAY_SIGNING_KEY"
	envSigningPassphrase = "PATCHBAY_SIGNING_PASSPHRASE"
)

// manifestTimeout bounds `PLUGIN manifest` when publish asks a plugin for
// its manifest.
const manifestTimeout = 10 * time.Second

func (a *app) pluginsCmd() *cobra.Command {
	return group("plugins", "Sign, publish and list remediation plugins",
		`Plugins are executables built with the Patchbay plugin SDK. A person signs
each one with an OpenSSH key (patchbay plugins sign, or ssh-keygen -Y sign -n
patchbay-plugin), an admin publishes it to the relay's catalog, and every agent
checks the signature against its own allowed_signers file before it runs it:
the relay stores plugins but cannot make an agent trust one.

The catalog is content-addressed (by SHA-256) and versions are immutable: a
plugin name, version, OS and architecture name exactly one file. To change a
plugin, bump the version in its manifest, rebuild, sign and publish again.`,
		`  patchbay plugins sign --key ~/.ssh/patchbay_signing cacheclear
  patchbay plugins publish cacheclear
  patchbay plugins list --name cacheclear`,
		a.signCmd(apiv1.KindPlugin), a.publishCmd(apiv1.KindPlugin), a.catalogListCmd(apiv1.KindPlugin), a.catalogShowCmd(apiv1.KindPlugin))
}

func (a *app) scriptsCmd() *cobra.Command {
	return group("scripts", "Sign, publish and list remediation scripts",
		`Scripts (POSIX sh, bash or PowerShell) are run on agents by the script
plugin: patchbay run script --param name=SCRIPT. Like plugins, they are
signed by a person, published by an admin and verified by each agent against
its own allowed_signers file.

A script may carry its manifest in a header comment (# patchbay:begin ...
# patchbay:end: name, version, description, os, parameters); see
scripts/README.md. Without one, its name is the file name without the
extension, it takes any parameter named [a-z][a-z0-9_]*, and its version is
0.0.0+ and the first 12 hex digits of its SHA-256, so every edit is a new
version and the newest published is the one that runs.`,
		`  patchbay scripts sign --key ~/.ssh/patchbay_signing flush-dns.sh
  patchbay scripts publish flush-dns.sh
  patchbay scripts list`,
		a.signCmd(apiv1.KindScript), a.publishCmd(apiv1.KindScript), a.catalogListCmd(apiv1.KindScript), a.catalogShowCmd(apiv1.KindScript))
}

func (a *app) signCmd(kind string) *cobra.Command {
	var key string
	example := "  patchbay plugins sign --key ~/.ssh/patchbay_signing bin/cacheclear bin/printerreset\n" +
		"  PATCHBAY_SIGNING_KEY=~/.ssh/patchbay_signing patchbay plugins sign cacheclear"
	if kind == apiv1.KindScript {
		example = "  patchbay scripts sign --key ~/.ssh/patchbay_signing scripts/*.sh scripts/*.ps1"
	}
	cmd := &cobra.Command{
		Use:   "sign --key KEY FILE...",
		Short: "Sign " + kind + "s with an OpenSSH key (writes FILE.sig)",
		Long: `Sign each FILE with the OpenSSH private key KEY and write the signature next to
it as FILE.sig; the paths of the signatures are printed. This works offline:
no login is needed, and the key never leaves this machine.

The signature is an OpenSSH SSHSIG over the whole file in the namespace
"` + signature.Namespace + `", the same as
  ssh-keygen -Y sign -n ` + signature.Namespace + ` -f KEY FILE
and it can be checked with ssh-keygen -Y verify. Ed25519, ECDSA and RSA
(2048 bits or more) keys work; plugins and scripts are signed the same way.

An encrypted key's passphrase is read from $` + envSigningPassphrase + `, or
else asked for on the terminal. --key defaults to $` + envSigningKey + `.

Agents run a file only when its signer is in their own allowed_signers file
(patchbay-agent trust add).`,
		Example: example,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageErrorf(cmd, "%s needs at least one FILE to sign", cmd.CommandPath())
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if key == "" {
				key = os.Getenv(envSigningKey)
			}
			if key == "" {
				return usageErrorf(cmd, "--key: name the OpenSSH private key to sign with (or set $%s)", envSigningKey)
			}
			signer, err := signature.LoadSigner(key, nil)
			if errors.Is(err, signature.ErrPassphraseNeeded) {
				pass, perr := a.readPassphrase(key)
				if perr != nil {
					return perr
				}
				signer, err = signature.LoadSigner(key, pass)
				if errors.Is(err, signature.ErrBadPassphrase) {
					return fmt.Errorf("signing key %s: wrong passphrase (from $%s or the terminal)", key, envSigningPassphrase)
				}
			}
			if err != nil {
				return err
			}
			var files []string
			for _, f := range args {
				if strings.HasSuffix(f, ".sig") { // from a glob such as bin/plugins/*
					fmt.Fprintf(a.stderr, "Skipping %s: it is a signature, not a %s.\n", f, kind)
					continue
				}
				if fi, err := os.Stat(f); err != nil {
					return fmt.Errorf("sign %s: %w", f, err)
				} else if !fi.Mode().IsRegular() {
					return fmt.Errorf("sign %s: not a regular file", f)
				}
				files = append(files, f)
			}
			if len(files) == 0 {
				return fmt.Errorf("nothing to sign: name the %s files, not their .sig files", kind)
			}
			for _, f := range files {
				sigPath, err := signature.SignFile(signer, f)
				if err != nil {
					return err
				}
				fmt.Fprintln(a.stdout, sigPath)
			}
			fmt.Fprintf(a.stderr, "Signed %d file(s) with %s key %s. Publish with: patchbay %ss publish FILE\n",
				len(files), signer.PublicKey().Type(), keyFingerprint(files[0]), kind)
			return nil
		},
	}
	cmd.Flags().StringVar(&key, "key", "", "OpenSSH private key to sign with (default $"+envSigningKey+")")
	return cmd
}

// keyFingerprint reads back the fingerprint of the key that signed file.
func keyFingerprint(file string) string {
	sig, err := os.ReadFile(file + ".sig")
	if err != nil {
		return ""
	}
	f, err := os.Open(file)
	if err != nil {
		return ""
	}
	defer f.Close()
	s, err := signature.Inspect(sig, f)
	if err != nil {
		return ""
	}
	return s.Fingerprint
}

// readPassphrase returns the passphrase of the encrypted key: from
// $PATCHBAY_SIGNING_PASSPHRASE, else asked for on the terminal.
func (a *app) readPassphrase(key string) ([]byte, error) {
	if p, ok := os.LookupEnv(envSigningPassphrase); ok {
		return []byte(p), nil
	}
	f, ok := a.stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil, fmt.Errorf("signing key %s is encrypted and there is no terminal to ask for its passphrase: set $%s", key, envSigningPassphrase)
	}
	fmt.Fprintf(a.stderr, "Passphrase for %s: ", key)
	pass, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(a.stderr)
	if err != nil {
		return nil, fmt.Errorf("read passphrase: %w", err)
	}
	return pass, nil
}

func (a *app) publishCmd(kind string) *cobra.Command {
	var sigPath, manifestPath string
	var sites []string
	var output outputFlag
	cmd := &cobra.Command{
		Use:   "publish FILE [--sig FILE.sig] [--site SITE]...",
		Short: "Publish a signed " + kind + " to the relay's catalog",
		Args:  oneArg("FILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			file := args[0]
			if sigPath == "" {
				sigPath = file + ".sig"
			}
			refs, err := siteRefs(cmd, sites)
			if err != nil {
				return err
			}
			return a.publish(cmd.Context(), kind, file, sigPath, manifestPath, refs, output)
		},
	}
	if kind == apiv1.KindPlugin {
		cmd.Use = "publish FILE [--sig FILE.sig] [--manifest manifest.json] [--site SITE]..."
		cmd.Long = `Publish the plugin executable FILE and its signature to the relay's catalog
(admin role), then print what the relay stored.

The signature is FILE.sig unless --sig says otherwise: sign the plugin first
with patchbay plugins sign. The relay checks that the signature matches the
file, reads the OS and architecture from the executable's header (ELF, PE or
Mach-O) and stores it under the name and version of its manifest. Publishing
the same file again changes nothing; the same name and version with other
content is refused: versions are immutable.

The manifest is obtained by running "FILE manifest" (with nothing but PATH in
its environment, for at most 10 seconds). A plugin built for another OS cannot
run here: run it on its own OS with "PLUGIN manifest > manifest.json" and pass
--manifest manifest.json.

` + publishSitesHelp(kind)
		cmd.Example = `  patchbay plugins publish bin/cacheclear
  patchbay plugins publish bin/cacheclear --site acme/paris --site acme/lyon
  patchbay plugins publish dist/cacheclear.exe --manifest cacheclear.json
  patchbay plugins publish cacheclear --sig signatures/cacheclear.sig -o json`
		cmd.Flags().StringVar(&manifestPath, "manifest", "", `the plugin's JSON manifest (default: what "FILE manifest" prints)`)
	} else {
		cmd.Long = `Publish the script FILE and its signature to the relay's catalog (admin role),
then print what the relay stored.

The signature is FILE.sig unless --sig says otherwise: sign the script first
with patchbay scripts sign. The relay checks that the signature matches the
file and reads the script's header manifest; the file name (without its
extension) is the script's name unless the header names it. Scripts are at
most 1 MiB. Publishing the same file again changes nothing; the same name and
version with other content is refused: bump the header's version (scripts
without one get a version derived from their content).

` + publishSitesHelp(kind)
		cmd.Example = `  patchbay scripts publish scripts/flush-dns.sh
  patchbay scripts publish scripts/flush-dns.sh --site acme/paris
  patchbay scripts publish clear-spooler.ps1 --sig clear-spooler.ps1.sig -o json`
	}
	cmd.Flags().StringVar(&sigPath, "sig", "", "the armored SSHSIG signature (default FILE.sig)")
	addSitesFlag(cmd, &sites, `a site the `+kind+` is published to (repeatable, or "all"); default: every site`)
	addOutputFlag(cmd, &output)
	return cmd
}

// publishSitesHelp explains publish --site.
func publishSitesHelp(kind string) string {
	return `--site publishes the ` + kind + ` to those sites only (default: every site,
present and future): only the agents of those sites can run or download it,
and only people who reach one of them see it in the catalog. ` + siteGrantHelp
}

func (a *app) publish(ctx context.Context, kind, file, sigPath, manifestPath string, sites []string, output outputFlag) error {
	f, err := os.Open(file)
	if err != nil {
		return fmt.Errorf("publish %s: %w", kind, err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil {
		return fmt.Errorf("publish %s: %w", file, err)
	} else if !fi.Mode().IsRegular() {
		return fmt.Errorf("publish %s: not a regular file", file)
	} else if kind == apiv1.KindScript && fi.Size() > apiv1.MaxScriptSize {
		return fmt.Errorf("publish %s: the script is %d bytes; scripts are at most 1 MiB", file, fi.Size())
	}
	sig, err := readLimited(sigPath, apiv1.MaxSignature)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("publish %s: no signature %s: sign it first: patchbay %ss sign --key KEY %s", file, sigPath, kind, file)
	}
	if err != nil {
		return fmt.Errorf("publish %s: signature: %w", file, err)
	}
	// Catch a stale or mismatched .sig here rather than after the upload.
	if _, err := signature.Inspect(sig, f); err != nil {
		return fmt.Errorf("publish %s: %s: %w: sign it again: patchbay %ss sign --key KEY %s", file, sigPath, err, kind, file)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("publish %s: %w", file, err)
	}
	u := client.Upload{File: f, FileName: file, Signature: sig, Sites: sites}
	if kind == apiv1.KindPlugin {
		if u.Manifest, err = pluginManifest(ctx, file, manifestPath); err != nil {
			return fmt.Errorf("publish %s: %w", file, err)
		}
	}
	return a.withClient(func(c *client.Client) error {
		publish := c.PublishPlugin
		if kind == apiv1.KindScript {
			publish = c.PublishScript
		}
		art, created, err := publish(ctx, u)
		if err != nil {
			return err
		}
		if created {
			fmt.Fprintf(a.stderr, "Published %s %s %s for %s to %s. Agents run it only if they trust its signer %s.\n",
				kind, clean(art.Name), clean(art.Version), platform(art), reach(art.Sites), clean(art.Signer))
		} else {
			fmt.Fprintf(a.stderr, "Already published: %s %s %s for %s is this very file; nothing changed.\n",
				kind, clean(art.Name), clean(art.Version), platform(art))
		}
		if output == formatJSON {
			return writeJSON(a.stdout, art)
		}
		return writeArtifactDetail(a.stdout, art)
	})
}

// readLimited reads a small file, refusing one over max bytes.
func readLimited(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s is over %d bytes", path, max)
	}
	return b, nil
}

// pluginManifest returns the plugin's manifest JSON: the file at
// manifestPath, or else what "PLUGIN manifest" prints. It is checked here so
// that a broken manifest is reported before the upload.
func pluginManifest(ctx context.Context, plugin, manifestPath string) ([]byte, error) {
	var (
		b   []byte
		err error
	)
	if manifestPath != "" {
		if b, err = readLimited(manifestPath, apiv1.MaxManifest); err != nil {
			return nil, fmt.Errorf("--manifest: %w", err)
		}
	} else if b, err = runManifest(ctx, plugin); err != nil {
		return nil, err
	}
	var m sdk.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("manifest: %w: want the JSON that PLUGIN manifest prints", err)
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return b, nil
}

// runManifest runs "PLUGIN manifest" with nothing but PATH in its
// environment and returns its standard output.
func runManifest(ctx context.Context, plugin string) ([]byte, error) {
	abs, err := filepath.Abs(plugin) // never looked up in $PATH
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, manifestTimeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, abs, "manifest")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	cmd.Stdout = &limitWriter{w: &stdout, n: apiv1.MaxManifest}
	cmd.Stderr = &limitWriter{w: &stderr, n: 4 << 10}
	cmd.WaitDelay = time.Second
	err = cmd.Run()
	if ctx.Err() == context.DeadlineExceeded {
		err = fmt.Errorf("no answer within %v", manifestTimeout)
	}
	if err != nil {
		msg := err.Error()
		if line, _, _ := strings.Cut(strings.TrimSpace(stderr.String()), "\n"); line != "" {
			msg += ": " + clean(line)
		}
		return nil, fmt.Errorf("run %s manifest: %s: if the plugin cannot run on this machine (another OS or architecture), run \"PLUGIN manifest > manifest.json\" on its own OS and pass --manifest manifest.json", plugin, msg)
	}
	return stdout.Bytes(), nil
}

// limitWriter keeps the first n bytes written and discards the rest.
type limitWriter struct {
	w io.Writer
	n int64
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if l.n > 0 {
		k := min(int64(len(p)), l.n)
		l.w.Write(p[:k])
		l.n -= k
	}
	return len(p), nil
}

func (a *app) catalogListCmd(kind string) *cobra.Command {
	var name string
	var output outputFlag
	cmd := &cobra.Command{
		Use:     "list [--name NAME] [-o table|json]",
		Aliases: []string{"ls"},
		Short:   "List the " + kind + "s in the relay's catalog",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withClient(func(c *client.Client) error {
				list := c.Plugins
				if kind == apiv1.KindScript {
					list = c.Scripts
				}
				arts, err := list(cmd.Context(), name)
				if err != nil {
					return err
				}
				if output == formatJSON {
					return writeJSON(a.stdout, arts)
				}
				if len(arts) == 0 {
					if name != "" {
						fmt.Fprintf(a.stderr, "No %s named %q in the catalog.\n", kind, name)
					} else {
						fmt.Fprintf(a.stderr, "No %ss in the catalog: sign one with patchbay %ss sign and publish it with patchbay %ss publish.\n", kind, kind, kind)
					}
					return nil
				}
				return writeArtifactsTable(a.stdout, kind, arts)
			})
		},
	}
	if kind == apiv1.KindPlugin {
		cmd.Long = `List the plugins in the relay's catalog (viewer role): every version of every
plugin, one line per build (OS/ARCH), by name and newest version first.

SHA256 is the start of the file's hash (-o json has it whole, with the
parameters); SIGNER is the fingerprint of the key that signed it: agents run
a plugin only if that key is in their allowed_signers file. SITES are the
sites it is published to ("all": every site); only what is published to a
site you reach is listed.`
		cmd.Example = `  patchbay plugins list
  patchbay plugins list --name cacheclear -o json`
	} else {
		cmd.Long = `List the scripts in the relay's catalog (viewer role): every version of every
script, by name and newest version first. OS is the script's OS list ("any"
when its header does not restrict it).

SHA256 is the start of the file's hash (-o json has it whole, with the
parameters); SIGNER is the fingerprint of the key that signed it: agents run
a script only if that key is in their allowed_signers file. SITES are the
sites it is published to ("all": every site); only what is published to a
site you reach is listed.`
		cmd.Example = `  patchbay scripts list
  patchbay scripts list --name flush-dns -o json`
	}
	cmd.Flags().StringVar(&name, "name", "", "only the "+kind+" with this name")
	addOutputFlag(cmd, &output)
	return cmd
}

func (a *app) catalogShowCmd(kind string) *cobra.Command {
	var output outputFlag
	cmd := &cobra.Command{
		Use:   "show " + strings.ToUpper(kind) + " [-o table|json]",
		Short: "Show one " + kind + " of the catalog in detail",
		Long: `Show one ` + kind + ` of the relay's catalog (viewer role): name, version, platform,
size, parameters, signer and who published it when.

` + artifactRefHelp(kind),
		Example: "  patchbay " + kind + "s show " + map[string]string{apiv1.KindPlugin: "cacheclear", apiv1.KindScript: "flush-dns"}[kind] +
			"\n  patchbay " + kind + "s show " + map[string]string{apiv1.KindPlugin: "cacheclear@1.2.0", apiv1.KindScript: "flush-dns@1.0.1"}[kind] +
			"\n  patchbay " + kind + "s show 9f86d081884c -o json",
		Args: oneArg(strings.ToUpper(kind)),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withClient(func(c *client.Client) error {
				art, err := resolveArtifact(cmd.Context(), c, kind, args[0])
				if err != nil {
					return err
				}
				if output == formatJSON {
					return writeJSON(a.stdout, art)
				}
				return writeArtifactDetail(a.stdout, art)
			})
		},
	}
	addOutputFlag(cmd, &output)
	return cmd
}

// platform is where an artifact runs: OS/ARCH for plugins, the OS list (or
// "any") for scripts.
func platform(art apiv1.Artifact) string {
	if art.Kind == apiv1.KindScript {
		if art.OS == "" {
			return "any"
		}
		return clean(art.OS)
	}
	return clean(art.OS + "/" + art.Arch)
}

// shortSHA is the first 12 hex digits of a SHA-256, as in the versions of
// unversioned scripts.
func shortSHA(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}

// writeArtifactsTable writes the plugins or scripts list table.
func writeArtifactsTable(w io.Writer, kind string, arts []apiv1.Artifact) error {
	where := "OS/ARCH"
	if kind == apiv1.KindScript {
		where = "OS"
	}
	t := newTable(w, "NAME", "VERSION", where, "SHA256", "SIGNER", "SITES", "PUBLISHED")
	for _, art := range arts {
		t.row(art.Name, art.Version, platform(art), shortSHA(art.SHA256), art.Signer, fmtSites(art.Sites), fmtTime(art.PublishedAt))
	}
	return t.flush()
}

// writeArtifactDetail writes one artifact as "Key: value" lines.
func writeArtifactDetail(w io.Writer, art apiv1.Artifact) error {
	t := newTable(w)
	t.row("Kind:", art.Kind)
	t.row("Name:", art.Name)
	t.row("Version:", art.Version)
	if art.Kind == apiv1.KindScript {
		t.row("OS:", platform(art))
	} else {
		t.row("OS/arch:", platform(art))
	}
	t.row("SHA256:", art.SHA256)
	t.row("Size:", fmtSize(art.Size))
	t.row("Description:", art.Description)
	t.row("Parameters:", fmtParams(art))
	t.row("Needs consent:", yesNo(art.NeedsConsent))
	t.row("May reboot:", yesNo(art.MayReboot))
	t.row("Signer:", strings.TrimSpace(art.Signer+" ("+art.SignerKeyType+")"))
	t.row("Published:", fmtTime(art.PublishedAt)+" by "+art.PublishedBy)
	t.row("Sites:", strings.Join(art.Sites, ", "))
	return t.flush()
}

// fmtSize writes a size in bytes, with KiB or MiB when large.
func fmtSize(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB (%d bytes)", float64(n)/(1<<20), n)
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB (%d bytes)", float64(n)/(1<<10), n)
	}
	return strconv.FormatInt(n, 10) + " bytes"
}

// fmtParams describes the declared parameters: "mode (string, default ok,
// one of ok|fail), path (string, required)".
func fmtParams(art apiv1.Artifact) string {
	if art.FreeParams {
		return "any named [a-z][a-z0-9_]* (the script has no manifest)"
	}
	if len(art.Params) == 0 {
		return "none"
	}
	parts := make([]string, len(art.Params))
	for i, p := range art.Params {
		attrs := []string{p.Type}
		if p.Required {
			attrs = append(attrs, "required")
		}
		if p.Default != "" {
			attrs = append(attrs, "default "+p.Default)
		}
		if len(p.Allowed) > 0 {
			attrs = append(attrs, "one of "+strings.Join(p.Allowed, "|"))
		}
		parts[i] = p.Name + " (" + strings.Join(attrs, ", ") + ")"
	}
	return strings.Join(parts, ", ")
}
