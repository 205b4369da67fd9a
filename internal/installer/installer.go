// Package installer holds the agent install scripts a relay serves at
// /install/ and makes the one-line installers that `patchbay agents
// installer` prints. Both the relay and the CLI use it, so the CLI knows the
// script's SHA-256 without asking the relay.
//
// Trust chain of a one-liner, none of it resting on the relay:
//
//  1. the line carries the SHA-256 of the install script (this package's
//     copy): it downloads the script and runs it only if the hash matches;
//  2. the line passes the SHA-256 of the agent binary, which the CLI took
//     from the release's SHA256SUMS after checking SHA256SUMS.sig against the
//     organisation's allowed signers: the script downloads the binary and
//     runs it only if the hash matches;
//  3. the agent enrolls with the token over TLS pinned to the CA fingerprint
//     the line carries.
//
// The downloads themselves skip TLS verification (the relay's CA is private
// and curl cannot pin a CA, only a server key that changes with the relay's
// certificate): they carry no secret and every byte is hash-checked, so a
// network attacker can make an install fail but not change what runs.
package installer

import (
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/patchbay/patchbay/certs"
	"github.com/patchbay/patchbay/internal/release"
)

//go:embed install.sh
var unixScript []byte

//go:embed install.ps1
var windowsScript []byte

// PathPrefix is where a relay serves the scripts: PathPrefix + ScriptName(os).
const PathPrefix = "/install/"

// TokenEnv carries the enrollment token from the one-liner to the agent.
const TokenEnv = "PATCHBAY_ENROLL_TOKEN"

// ScriptName is the install script's file name for goos: linux.sh,
// darwin.sh (the same script) or windows.ps1.
func ScriptName(goos string) (string, error) {
	switch goos {
	case "linux", "darwin":
		return goos + ".sh", nil
	case "windows":
		return "windows.ps1", nil
	}
	return "", fmt.Errorf("installer: no installer for %q (want linux, darwin or windows)", goos)
}

// Script returns the install script served under name (see ScriptName).
func Script(name string) ([]byte, bool) {
	switch name {
	case "linux.sh", "darwin.sh":
		return unixScript, true
	case "windows.ps1":
		return windowsScript, true
	}
	return nil, false
}

// ScriptSHA256 is the hex SHA-256 of the script for goos.
func ScriptSHA256(goos string) (string, error) {
	name, err := ScriptName(goos)
	if err != nil {
		return "", err
	}
	b, _ := Script(name)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// Params is what a one-liner embeds.
type Params struct {
	Relay         string // https://HOST[:PORT] the agent enrolls with and downloads from
	Token         string // single-use enrollment token
	CAFingerprint string // sha256:<hex> of the relay's CA
	Version       string // release version
	OS, Arch      string // target platform
	AgentSHA256   string // hex SHA-256 of the agent binary, from the verified manifest
}

// CheckRelayURL accepts https://HOST[:PORT] (a trailing slash is dropped)
// with a host a command line carries safely, and returns it canonical.
func CheckRelayURL(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || strings.Trim(u.Path, "/") != "" {
		return "", fmt.Errorf("installer: relay URL %q: want https://HOST[:PORT]", s)
	}
	if !safe(u.Host, ".-:[]") {
		return "", fmt.Errorf("installer: relay host %q has characters a command line cannot carry safely", u.Host)
	}
	return "https://" + u.Host, nil
}

func (p *Params) check() error {
	relay, err := CheckRelayURL(p.Relay)
	if err != nil {
		return err
	}
	p.Relay = relay
	if p.Token == "" || !safe(p.Token, "_-.") {
		return errors.New("installer: the enrollment token is empty or has unexpected characters")
	}
	fp, err := certs.ParseFingerprint(p.CAFingerprint)
	if err != nil {
		return fmt.Errorf("installer: %w", err)
	}
	p.CAFingerprint = fp
	if err := release.CheckVersion(p.Version); err != nil {
		return fmt.Errorf("installer: %w", err)
	}
	if p.Arch != "amd64" && p.Arch != "arm64" {
		return fmt.Errorf("installer: architecture %q: want amd64 or arm64", p.Arch)
	}
	if b, err := hex.DecodeString(p.AgentSHA256); err != nil || len(b) != sha256.Size {
		return fmt.Errorf("installer: agent SHA-256 %q is not 64 hex digits", p.AgentSHA256)
	}
	p.AgentSHA256 = strings.ToLower(p.AgentSHA256)
	return nil
}

// safe reports whether s has only letters, digits and the extra characters.
func safe(s, extra string) bool {
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune(extra, c)) {
			return false
		}
	}
	return true
}

// OneLiner returns the one-line installer for p.OS: POSIX sh for linux and
// darwin (to paste into a root shell), PowerShell for windows (an
// Administrator PowerShell). It contains the enrollment token: a secret.
func OneLiner(p Params) (string, error) {
	if err := p.check(); err != nil {
		return "", err
	}
	name, err := ScriptName(p.OS)
	if err != nil {
		return "", err
	}
	scriptSum, _ := ScriptSHA256(p.OS)
	scriptURL := p.Relay + PathPrefix + name
	if p.OS == "windows" {
		return windowsLine(p, scriptURL, scriptSum), nil
	}
	hash := "sha256sum"
	if p.OS == "darwin" {
		hash = "shasum -a 256"
	}
	// The script runs only if its hash is the one this line carries; the
	// temporary file goes either way, and the line's status is the install's.
	return fmt.Sprintf(`f=$(mktemp) && curl -fsSk -o "$f" '%s' && if [ "$(%s <"$f" | cut -c1-64)" = %s ]; then %s='%s' sh "$f" --server '%s' --ca-fingerprint '%s' --version '%s' --arch '%s' --sha256 '%s'; else echo "patchbay install: the install script from the relay does not have the SHA-256 this line expects: not running it" >&2; false; fi; r=$?; rm -f "$f"; (exit $r)`,
		scriptURL, hash, scriptSum, TokenEnv, p.Token, p.Relay, p.CAFingerprint, p.Version, p.Arch, p.AgentSHA256), nil
}

func windowsLine(p Params, scriptURL, scriptSum string) string {
	return fmt.Sprintf(`$ErrorActionPreference='Stop'; $f=Join-Path ([IO.Path]::GetTempPath()) ('patchbay-install-'+[guid]::NewGuid()+'.ps1'); `+
		`if($PSVersionTable.PSVersion.Major -ge 6){Invoke-WebRequest -UseBasicParsing -SkipCertificateCheck -Uri '%s' -OutFile $f}else{[Net.ServicePointManager]::SecurityProtocol=[Net.ServicePointManager]::SecurityProtocol -bor 3072; [Net.ServicePointManager]::ServerCertificateValidationCallback={$true}; Invoke-WebRequest -UseBasicParsing -Uri '%s' -OutFile $f}; `+
		`if((Get-FileHash -Algorithm SHA256 -Path $f).Hash -ne '%s'){Remove-Item $f; throw 'patchbay install: the install script from the relay does not have the SHA-256 this line expects: not running it'}; `+
		`$env:%s='%s'; try{& powershell -NoProfile -ExecutionPolicy Bypass -File $f -Server '%s' -CAFingerprint '%s' -Version '%s' -Arch '%s' -SHA256 '%s'; if($LASTEXITCODE -ne 0){throw "patchbay install: failed (exit code $LASTEXITCODE), see above"}}finally{Remove-Item Env:%s; Remove-Item $f}`,
		scriptURL, scriptURL, scriptSum, TokenEnv, p.Token, p.Relay, p.CAFingerprint, p.Version, p.Arch, p.AgentSHA256, TokenEnv)
}
