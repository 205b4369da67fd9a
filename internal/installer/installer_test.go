package installer

import (
	"crypto/sha256"
	"encoding/hex"
	"os/exec"
	"strings"
	"testing"
)

const (
	fp  = "sha256:1b15a81127e3c8fafd6745d0b4e6696aac30d290b5782c6b3c7d4380b679fc68"
	sum = "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb"
)

func good(goos string) Params {
	return Params{Relay: "https://relay.example.com:8443", Token: "pbe_Wq3-x_Y", CAFingerprint: fp,
		Version: "v1.4.0-3-g1a2b3c4", OS: goos, Arch: "arm64", AgentSHA256: strings.ToUpper(sum)}
}

func TestOneLinerCarriesEverything(t *testing.T) {
	for _, goos := range []string{"linux", "darwin", "windows"} {
		line, err := OneLiner(good(goos))
		if err != nil {
			t.Fatalf("%s: %v", goos, err)
		}
		scriptSum, _ := ScriptSHA256(goos)
		name, _ := ScriptName(goos)
		for _, want := range []string{"https://relay.example.com:8443" + PathPrefix + name, "pbe_Wq3-x_Y", fp, "v1.4.0-3-g1a2b3c4", "arm64", sum, scriptSum, TokenEnv} {
			if !strings.Contains(line, want) {
				t.Errorf("%s line lacks %q:\n%s", goos, want, line)
			}
		}
		if strings.Contains(line, "\n") {
			t.Errorf("%s line has a newline", goos)
		}
	}
	b, _ := Script("linux.sh")
	got := sha256.Sum256(b)
	if s, _ := ScriptSHA256("linux"); s != hex.EncodeToString(got[:]) {
		t.Errorf("ScriptSHA256 %s is not the served script's", s)
	}
}

func TestOneLinerRefusesUnsafeValues(t *testing.T) {
	for name, mod := range map[string]func(*Params){
		"http relay":       func(p *Params) { p.Relay = "http://relay:8443" },
		"relay path":       func(p *Params) { p.Relay = "https://relay:8443/x" },
		"relay quote":      func(p *Params) { p.Relay = "https://re'lay:8443" },
		"token quote":      func(p *Params) { p.Token = "pbe_'; rm -rf /" },
		"token empty":      func(p *Params) { p.Token = "" },
		"fingerprint":      func(p *Params) { p.CAFingerprint = "sha256:zz" },
		"version":          func(p *Params) { p.Version = "v1;reboot" },
		"arch":             func(p *Params) { p.Arch = "386" },
		"agent sha short":  func(p *Params) { p.AgentSHA256 = "abc" },
		"agent sha quoted": func(p *Params) { p.AgentSHA256 = "'" + sum[1:] },
		"os":               func(p *Params) { p.OS = "plan9" },
	} {
		p := good("linux")
		mod(&p)
		if line, err := OneLiner(p); err == nil {
			t.Errorf("%s: accepted: %s", name, line)
		}
	}
}

// The scripts and the sh one-liner are valid shell.
func TestShellSyntax(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Fatal("sh not found: install it (Debian package dash)")
	}
	b, _ := Script("linux.sh")
	line, err := OneLiner(good("linux"))
	if err != nil {
		t.Fatal(err)
	}
	for name, text := range map[string]string{"install.sh": string(b), "one-liner": line} {
		cmd := exec.Command(sh, "-n")
		cmd.Stdin = strings.NewReader(text)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s: sh -n: %v\n%s", name, err, out)
		}
	}
}
