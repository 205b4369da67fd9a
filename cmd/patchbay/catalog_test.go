package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/patchbay/patchbay/client"
	"github.com/patchbay/patchbay/client/clienttest"
	"github.com/patchbay/patchbay/internal/apiv1"
	"github.com/patchbay/patchbay/internal/audit"
	"github.com/patchbay/patchbay/internal/testtool"
	"github.com/patchbay/patchbay/plugins/sdk"
	"github.com/patchbay/patchbay/plugins/sdk/sdktest"
	"github.com/patchbay/patchbay/server/store"
)

// realRelay serves the relay's real REST API (clienttest: package api over a
// SQLite store, clock fixedNow) over TLS and logs the CLI in with a token of
// role for alice (audit record 1) in a temporary $PATCHBAY_CONFIG.
func realRelay(t *testing.T, role string) *store.Store {
	t.Helper()
	relay := clienttest.Start(t, clienttest.Clock(func() time.Time { return fixedNow }))
	secret := relay.Mint(t, role, "alice")
	path := filepath.Join(t.TempDir(), "config.json")
	t.Setenv(client.ConfigEnv, path)
	if err := client.SaveConfigTo(path, relay.Config(secret, "alice", role)); err != nil {
		t.Fatal(err)
	}
	return relay.Store
}

func sshKeygen(t *testing.T, args ...string) string {
	t.Helper()
	testtool.Need(t, "ssh-keygen", "openssh-client")
	out, err := exec.Command("ssh-keygen", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("ssh-keygen %q: %v\n%s", args, err, out)
	}
	return string(out)
}

// newKey generates an Ed25519 key with passphrase (may be empty).
func newKey(t *testing.T, passphrase string) string {
	t.Helper()
	key := filepath.Join(t.TempDir(), "signing_key")
	sshKeygen(t, "-q", "-t", "ed25519", "-N", passphrase, "-C", "secops@example.com", "-f", key)
	return key
}

// copyTo copies src to dir/name (mode 0755) with extra bytes appended.
func copyTo(t *testing.T, src, dir, name, extra string) string {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, append(b, extra...), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPluginsSignPublish(t *testing.T) {
	st := realRelay(t, apiv1.RoleAdmin)
	dir := t.TempDir()
	key := newKey(t, "")
	built := sdktest.Build(t, "github.com/patchbay/patchbay/plugins/sdk/testplugin")
	plugin := copyTo(t, built, dir, "testplugin", "")

	r := patchbay(t, "", "plugins", "publish", plugin)
	if r.code != 1 || !strings.Contains(r.stderr, "no signature "+plugin+".sig: sign it first: patchbay plugins sign --key KEY "+plugin) {
		t.Fatalf("publish unsigned: %+v", r)
	}

	r = patchbay(t, "", "plugins", "sign", "--key", key, plugin)
	if r.code != 0 || r.stdout != plugin+".sig\n" || !strings.Contains(r.stderr, "Signed 1 file(s) with ssh-ed25519 key SHA256:") {
		t.Fatalf("sign: %+v", r)
	}
	// OpenSSH accepts the signature: Patchbay's signing interoperates with ssh-keygen.
	check := exec.Command("ssh-keygen", "-Y", "check-novalidate", "-n", "patchbay-plugin", "-s", plugin+".sig")
	check.Stdin, _ = os.Open(plugin)
	if out, err := check.CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen -Y check-novalidate: %v\n%s", err, out)
	}

	r = patchbay(t, "", "plugins", "publish", plugin)
	if r.code != 0 || !strings.HasPrefix(r.stderr, "Published plugin testplugin 1.0.0 for "+runtime.GOOS+"/"+runtime.GOARCH+" to every site. Agents run it only if they trust its signer SHA256:") {
		t.Fatalf("publish: %+v", r)
	}
	for _, want := range []string{"Name:           testplugin\n", "Version:        1.0.0\n", "Parameters:     mode (string, default ok, one of ok|",
		"Signer:         SHA256:", "(ssh-ed25519)\n", "Published:      2026-11-02T10:00:00Z by alice (admin, api token "} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("publish output lacks %q:\n%s", want, r.stdout)
		}
	}
	r = patchbay(t, "", "plugins", "publish", plugin, "-o", "json")
	var art apiv1.Artifact
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &art) != nil || art.Name != "testplugin" ||
		!strings.HasPrefix(r.stderr, "Already published: plugin testplugin 1.0.0 for "+runtime.GOOS+"/"+runtime.GOARCH+" is this very file; nothing changed.") {
		t.Fatalf("publish again: %+v", r)
	}

	// Other bytes under the same version: refused by the relay.
	rebuilt := copyTo(t, built, dir, "rebuilt", "rebuilt")
	if r := patchbay(t, "", "plugins", "sign", "--key", key, rebuilt); r.code != 0 {
		t.Fatalf("sign rebuilt: %+v", r)
	}
	r = patchbay(t, "", "plugins", "publish", rebuilt)
	if r.code != 1 || !strings.Contains(r.stderr, "patchbay: publish plugin rebuilt: plugin testplugin 1.0.0 for "+runtime.GOOS+"/"+runtime.GOARCH+
		" is already published with other content (sha256 "+art.SHA256+"): versions are immutable, so bump the version") {
		t.Fatalf("publish rebuilt: %+v", r)
	}

	manifest := filepath.Join(dir, "manifest.json")
	script := filepath.Join(dir, "fails")
	os.WriteFile(script, []byte("#!/bin/sh\necho 'cannot run here' >&2\nexit 3\n"), 0o755)
	sshKeygen(t, "-q", "-Y", "sign", "-n", "patchbay-plugin", "-f", key, script)
	tests := []struct {
		name     string
		args     []string
		manifest string
		code     int
		stderr   string
	}{
		{"plugin that cannot run here", []string{script}, "", 1,
			"run " + script + " manifest: exit status 3: cannot run here: if the plugin cannot run on this machine (another OS or architecture), run \"PLUGIN manifest > manifest.json\" on its own OS and pass --manifest manifest.json"},
		{"--manifest, but not an executable", []string{script, "--manifest", manifest}, `{"name":"fails","version":"1.0.0"}`, 1,
			"not an executable (neither ELF, PE nor Mach-O): publish the plugin's compiled binary"},
		{"invalid --manifest", []string{plugin, "--manifest", manifest}, `{"name":"Bad","version":"1"}`, 1, `manifest: name "Bad"`},
		{"--manifest not JSON", []string{plugin, "--manifest", manifest}, `name: x`, 1, "want the JSON that PLUGIN manifest prints"},
		{"stale signature", []string{rebuilt, "--sig", plugin + ".sig"}, "", 1,
			"publish " + rebuilt + ": " + plugin + ".sig: inspect signature: bad signature: the signature does not match the data"},
		{"missing file", []string{filepath.Join(dir, "nope")}, "", 1, "no such file"},
		{"two files", []string{plugin, plugin}, "", 2, "needs exactly one argument"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			os.WriteFile(manifest, []byte(tt.manifest), 0o644)
			r := patchbay(t, "", append([]string{"plugins", "publish"}, tt.args...)...)
			if r.code != tt.code || !strings.Contains(r.stderr, tt.stderr) {
				t.Fatalf("= %+v; want exit %d with %q", r, tt.code, tt.stderr)
			}
		})
	}

	r = patchbay(t, "", "plugins", "list", "-o", "json")
	var arts []apiv1.Artifact
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &arts) != nil || len(arts) != 1 || arts[0].SHA256 != art.SHA256 {
		t.Fatalf("plugins list -o json: %+v", r)
	}
	r = patchbay(t, "", "plugins", "show", art.SHA256)
	if r.code != 0 || !strings.Contains(r.stdout, "SHA256:         "+art.SHA256) {
		t.Fatalf("plugins show: %+v", r)
	}
	recs, _ := st.ListAudit(context.Background(), 0, 100)
	var published []audit.Record
	for _, rec := range recs {
		if rec.Action == "plugin.publish" {
			published = append(published, rec)
		}
	}
	if len(published) != 1 || published[0].Target != "testplugin@1.0.0" || published[0].Detail["sha256"] != art.SHA256 {
		t.Errorf("plugin.publish audit records: %+v", published)
	}
}

func TestSignCommand(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "flush-dns.sh")
	os.WriteFile(file, []byte("#!/bin/sh\nresolvectl flush-caches\n"), 0o644)
	plain := newKey(t, "")
	encrypted := newKey(t, "correct horse")
	t.Setenv(envSigningKey, "")
	os.Unsetenv(envSigningKey)
	tests := []struct {
		name   string
		env    map[string]string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"no key", nil, []string{"scripts", "sign", file}, 2, "", "--key: name the OpenSSH private key to sign with (or set $PATCHBAY_SIGNING_KEY)"},
		{"no file", nil, []string{"plugins", "sign", "--key", plain}, 2, "", "needs at least one FILE"},
		{"key from the environment", map[string]string{envSigningKey: plain}, []string{"scripts", "sign", file}, 0, file + ".sig\n", "Publish with: patchbay scripts publish FILE"},
		{"encrypted key without a terminal", nil, []string{"scripts", "sign", "--key", encrypted, file}, 1, "",
			"signing key " + encrypted + " is encrypted and there is no terminal to ask for its passphrase: set $PATCHBAY_SIGNING_PASSPHRASE"},
		{"wrong passphrase", map[string]string{envSigningPassphrase: "wrong"}, []string{"scripts", "sign", "--key", encrypted, file}, 1, "", "wrong passphrase"},
		{"passphrase from the environment", map[string]string{envSigningPassphrase: "correct horse"}, []string{"plugins", "sign", "--key", encrypted, file}, 0, file + ".sig\n", "Signed 1 file(s)"},
		{"missing key", nil, []string{"plugins", "sign", "--key", filepath.Join(dir, "nokey"), file}, 1, "", "no such file"},
		{"missing file", nil, []string{"plugins", "sign", "--key", plain, file, filepath.Join(dir, "nope")}, 1, "", "nope: no such file"},
		{"a directory", nil, []string{"plugins", "sign", "--key", plain, dir}, 1, "", "not a regular file"},
		{"signatures are skipped", nil, []string{"plugins", "sign", "--key", plain, file, file + ".sig"}, 0, file + ".sig\n", "Skipping " + file + ".sig: it is a signature, not a plugin."},
		{"only signatures", nil, []string{"plugins", "sign", "--key", plain, file + ".sig"}, 1, "", "nothing to sign"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			os.Remove(file + ".sig")
			r := patchbay(t, "", tt.args...)
			if r.code != tt.code || r.stdout != tt.stdout || !strings.Contains(r.stderr, tt.stderr) {
				t.Fatalf("= %+v; want exit %d, stdout %q, stderr with %q", r, tt.code, tt.stdout, tt.stderr)
			}
			if _, err := os.Stat(file + ".sig"); (err == nil) != (tt.code == 0) {
				t.Errorf("signature written: %v, want %v", err == nil, tt.code == 0)
			}
		})
	}
}

func TestScriptsPublish(t *testing.T) {
	realRelay(t, apiv1.RoleAdmin)
	key := newKey(t, "")
	dir := t.TempDir()
	script := filepath.Join(dir, "renew.sh")
	os.WriteFile(script, []byte(`#!/bin/sh
# patchbay:begin
# name: renew-dhcp
# version: 1.2.0
# description: Renew the DHCP lease of one interface
# os: linux
# param: interface string required -- the interface to renew
# patchbay:end
dhclient -r "$PATCHBAY_PARAM_INTERFACE"
`), 0o644)
	if r := patchbay(t, "", "scripts", "sign", "--key", key, script); r.code != 0 {
		t.Fatalf("sign: %+v", r)
	}
	r := patchbay(t, "", "scripts", "publish", script)
	if r.code != 0 || !strings.HasPrefix(r.stderr, "Published script renew-dhcp 1.2.0 for linux to every site.") ||
		!strings.Contains(r.stdout, "Parameters:     interface (string, required)\n") || !strings.Contains(r.stdout, "OS:             linux\n") {
		t.Fatalf("publish: %+v", r)
	}
	r = patchbay(t, "", "scripts", "list", "--name", "renew-dhcp", "-o", "json")
	var arts []apiv1.Artifact
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &arts) != nil || len(arts) != 1 || arts[0].Version != "1.2.0" {
		t.Fatalf("scripts list: %+v", r)
	}
	big := filepath.Join(dir, "big.sh")
	os.WriteFile(big, make([]byte, apiv1.MaxScriptSize+1), 0o644)
	if r := patchbay(t, "", "scripts", "publish", big); r.code != 1 || !strings.Contains(r.stderr, "scripts are at most 1 MiB") {
		t.Errorf("big script: %+v", r)
	}
}

func TestCatalogAsViewer(t *testing.T) {
	realRelay(t, apiv1.RoleViewer)
	r := patchbay(t, "", "plugins", "list")
	if r.code != 0 || r.stdout != "" || r.stderr != "No plugins in the catalog: sign one with patchbay plugins sign and publish it with patchbay plugins publish.\n" {
		t.Errorf("empty list: %+v", r)
	}
	r = patchbay(t, "", "scripts", "list", "--name", "x")
	if r.code != 0 || r.stderr != "No script named \"x\" in the catalog.\n" {
		t.Errorf("empty list by name: %+v", r)
	}
	r = patchbay(t, "", "plugins", "list", "-o", "json")
	if r.code != 0 || r.stdout != "[]\n" {
		t.Errorf("empty JSON list: %+v", r)
	}
	r = patchbay(t, "", "plugins", "list", "-o", "yaml")
	if r.code != 2 {
		t.Errorf("-o yaml: %+v", r)
	}
	r = patchbay(t, "", "plugins", "show", "abc")
	if r.code != 1 || !strings.Contains(r.stderr, `find plugin abc: no plugin with that name, name@version or SHA-256 prefix: patchbay plugins list shows them`) {
		t.Errorf("show unknown: %+v", r)
	}
	// A viewer cannot publish: the relay says which role is needed.
	key := newKey(t, "")
	dir := t.TempDir()
	script := filepath.Join(dir, "x.sh")
	os.WriteFile(script, []byte("echo x\n"), 0o644)
	patchbay(t, "", "scripts", "sign", "--key", key, script)
	r = patchbay(t, "", "scripts", "publish", script)
	if r.code != 1 || !strings.Contains(r.stderr, "patchbay: publish script x.sh: this needs the admin role") {
		t.Errorf("publish as viewer: %+v", r)
	}
}

// fixtureArtifact is a catalog entry with fixed content and metadata.
func fixtureArtifact(kind, name, version, goos, goarch string, day int, params ...sdk.Param) (store.Artifact, []byte) {
	content := []byte(kind + name + version + goos + goarch)
	sum := sha256.Sum256(content)
	return store.Artifact{
		SHA256: hex.EncodeToString(sum[:]), Kind: kind, Name: name, Version: version, OS: goos, Arch: goarch,
		Manifest:    sdk.Manifest{Name: name, Version: version, Description: "fixture " + name, Params: params},
		HasManifest: len(params) > 0 || kind == store.KindPlugin,
		Signature:   "sig", SignerFingerprint: "SHA256:q9Vf2NpwYl1kQx3bGmJ4ZyT8a0R6cHsDuE5oLiK7nWA", SignerKeyType: "ssh-ed25519",
		PublishedBy: "alice (admin, api token 3b4d5e6f)", PublishedAt: fixedNow.Add(time.Duration(day) * 24 * time.Hour),
	}, content
}

func TestCatalogListGolden(t *testing.T) {
	st := realRelay(t, apiv1.RoleViewer)
	mode := sdk.Param{Name: "mode", Type: sdk.TypeString, Default: "ok", Allowed: []string{"ok", "clean"}}
	iface := sdk.Param{Name: "interface", Type: sdk.TypeString, Required: true}
	for _, f := range []struct {
		kind, name, version, goos, goarch string
		day                               int
		params                            []sdk.Param
	}{
		{store.KindPlugin, "cacheclear", "1.9.0", "linux", "amd64", -30, []sdk.Param{mode}},
		{store.KindPlugin, "cacheclear", "1.10.0", "linux", "amd64", -2, []sdk.Param{mode}},
		{store.KindPlugin, "cacheclear", "1.10.0", "windows", "arm64", -2, []sdk.Param{mode}},
		{store.KindPlugin, "printerreset", "0.3.0-rc1", "darwin", "arm64", -1, nil},
		{store.KindScript, "flush-dns", "1.0.0", "darwin,linux", "", -5, []sdk.Param{iface}},
		{store.KindScript, "flush-dns", "1.0.0", "windows", "", -5, []sdk.Param{mode}},
		{store.KindScript, "kill-teams", "0.0.0+4f2a9c1e77d0", "", "", -1, nil},
	} {
		a, content := fixtureArtifact(f.kind, f.name, f.version, f.goos, f.goarch, f.day, f.params...)
		if _, err := st.PutArtifact(context.Background(), a, content); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct {
		golden string
		args   []string
	}{
		{"catalog_plugins_list.golden", []string{"plugins", "list"}},
		{"catalog_scripts_list.golden", []string{"scripts", "ls"}},
		{"catalog_plugins_list_name.golden", []string{"plugins", "list", "--name", "cacheclear"}},
	} {
		r := patchbay(t, "", tt.args...)
		if r.code != 0 || r.stderr != "" {
			t.Fatalf("%v: %+v", tt.args, r)
		}
		golden(t, tt.golden, []byte(r.stdout))
	}
	a, _ := fixtureArtifact(store.KindScript, "kill-teams", "0.0.0+4f2a9c1e77d0", "", "", -1)
	r := patchbay(t, "", "scripts", "show", a.SHA256)
	if r.code != 0 {
		t.Fatalf("scripts show: %+v", r)
	}
	golden(t, "catalog_scripts_show.golden", []byte(r.stdout))
}

func TestCatalogHelp(t *testing.T) {
	for _, args := range [][]string{
		{"plugins"}, {"scripts", "--help"}, {"plugins", "sign", "--help"}, {"plugins", "publish", "--help"},
		{"scripts", "publish", "--help"}, {"plugins", "list", "--help"}, {"scripts", "show", "--help"},
	} {
		r := patchbay(t, "", args...)
		if r.code != 0 || !strings.Contains(r.stdout, "Usage:") || !strings.Contains(r.stdout, "Examples:") {
			t.Errorf("%v: %+v", args, r)
		}
	}
	if r := patchbay(t, "", "plugins", "frobnicate"); r.code != 2 {
		t.Errorf("unknown subcommand: %+v", r)
	}
}
