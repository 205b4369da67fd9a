package client_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/patchbay/patchbay/client"
	"github.com/patchbay/patchbay/client/clienttest"
	"github.com/patchbay/patchbay/internal/apiv1"
	"github.com/patchbay/patchbay/internal/testtool"
	"github.com/patchbay/patchbay/plugins/sdk/sdktest"
	"github.com/patchbay/patchbay/server/store"
)

// realRelay serves the relay's real REST API (clienttest: package api over a
// SQLite store) on 127.0.0.1 over TLS, and returns client configurations for
// an admin and a viewer token reaching every site, and the relay's store.
func realRelay(t *testing.T) (admin, viewer client.Config, st *store.Store) {
	t.Helper()
	relay := clienttest.New(t)
	return relay.Admin(), relay.Viewer(), relay.Store
}

func newClient(t *testing.T, cfg client.Config) *client.Client {
	t.Helper()
	c, err := client.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// signed writes content to dir/name and signs it with a fresh Ed25519 key
// using ssh-keygen; it returns the file's path and signature.
func signed(t *testing.T, key, dir, name string, content []byte) (string, []byte) {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, content, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("ssh-keygen", "-q", "-Y", "sign", "-n", "patchbay-plugin", "-f", key, path).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen -Y sign: %v\n%s", err, out)
	}
	sig, err := os.ReadFile(path + ".sig")
	if err != nil {
		t.Fatal(err)
	}
	return path, sig
}

func sshKey(t *testing.T) string {
	t.Helper()
	testtool.Need(t, "ssh-keygen", "openssh-client")
	key := filepath.Join(t.TempDir(), "key")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	return key
}

func TestPublishAndList(t *testing.T) {
	adminCfg, viewerCfg, st := realRelay(t)
	admin, viewer := newClient(t, adminCfg), newClient(t, viewerCfg)
	key := sshKey(t)
	dir := t.TempDir()
	bin, err := os.ReadFile(sdktest.Build(t, "github.com/patchbay/patchbay/plugins/sdk/testplugin"))
	if err != nil {
		t.Fatal(err)
	}
	path, sig := signed(t, key, dir, "testplugin", bin)
	manifest := []byte(`{"name":"testplugin","version":"1.0.0","params":[{"name":"mode","type":"string"}]}`)
	open := func(p string) *os.File {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}

	art, created, err := admin.PublishPlugin(ctx(t), client.Upload{File: open(path), FileName: path, Signature: sig, Manifest: manifest})
	if err != nil || !created {
		t.Fatalf("PublishPlugin: created %v, %v", created, err)
	}
	if art.Name != "testplugin" || art.Version != "1.0.0" || art.OS != runtime.GOOS || art.Arch != runtime.GOARCH ||
		art.Size != int64(len(bin)) || art.SignerKeyType != "ssh-ed25519" || art.PublishedBy == "" {
		t.Errorf("published %+v", art)
	}
	if stored, _ := st.ArtifactContent(context.Background(), art.SHA256); !bytes.Equal(stored, bin) {
		t.Error("the relay did not store the bytes sent")
	}
	again, created, err := admin.PublishPlugin(ctx(t), client.Upload{File: open(path), FileName: "testplugin", Signature: sig, Manifest: manifest})
	if err != nil || created || again.SHA256 != art.SHA256 || !again.PublishedAt.Equal(art.PublishedAt) {
		t.Errorf("republish: created %v, %v, %+v", created, err, again)
	}

	other, otherSig := signed(t, key, dir, "rebuilt", append(bin, "rebuilt"...))
	tests := []struct {
		name     string
		c        *client.Client
		u        client.Upload
		status   int
		contains string
	}{
		{"other bytes, same version", admin, client.Upload{File: open(other), FileName: other, Signature: otherSig, Manifest: manifest}, 409,
			"publish plugin rebuilt: plugin testplugin 1.0.0 for " + runtime.GOOS + "/" + runtime.GOARCH + " is already published with other content"},
		{"viewer", viewer, client.Upload{File: open(path), FileName: path, Signature: sig, Manifest: manifest}, 403, "needs the admin role"},
		{"tampered", admin, client.Upload{File: open(other), FileName: other, Signature: sig, Manifest: manifest}, 400, "signature does not match the file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := tt.c.PublishPlugin(ctx(t), tt.u)
			if !client.IsStatus(err, tt.status) || !strings.Contains(err.Error(), tt.contains) {
				t.Fatalf("err = %v; want %d containing %q", err, tt.status, tt.contains)
			}
		})
	}
	_, _, err = admin.PublishPlugin(ctx(t), client.Upload{File: iotest.ErrReader(os.ErrPermission), FileName: "x", Signature: sig, Manifest: manifest})
	if err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Errorf("unreadable file: %v", err)
	}

	script, scriptSig := signed(t, key, dir, "flush-dns.sh", []byte("#!/bin/sh\nresolvectl flush-caches\n"))
	sa, created, err := admin.PublishScript(ctx(t), client.Upload{File: open(script), FileName: script, Signature: scriptSig})
	if err != nil || !created || sa.Name != "flush-dns" || sa.Kind != "script" || !sa.FreeParams {
		t.Fatalf("PublishScript: %+v, %v, %v", sa, created, err)
	}

	for _, l := range []struct {
		list func(context.Context, string) ([]apiv1.Artifact, error)
		name string
		want []string
	}{
		{viewer.Plugins, "", []string{art.SHA256}},
		{viewer.Plugins, "testplugin", []string{art.SHA256}},
		{viewer.Plugins, "flush-dns", nil},
		{viewer.Scripts, "", []string{sa.SHA256}},
	} {
		arts, err := l.list(ctx(t), l.name)
		if err != nil || arts == nil || len(arts) != len(l.want) {
			t.Errorf("list %q: %d, %v; want %d", l.name, len(arts), err, len(l.want))
			continue
		}
		for i, a := range arts {
			if a.SHA256 != l.want[i] {
				t.Errorf("list %q [%d] = %s", l.name, i, a.SHA256)
			}
		}
	}
	if got, err := viewer.Plugin(ctx(t), art.SHA256); err != nil || got.SHA256 != art.SHA256 {
		t.Errorf("Plugin: %+v, %v", got, err)
	}
	if _, err := viewer.Script(ctx(t), art.SHA256); !client.IsStatus(err, 404) {
		t.Errorf("Script(plugin sha): %v", err)
	}
}
