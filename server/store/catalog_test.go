package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/patchbay/patchbay/plugins/sdk"
)

// artifact returns a plugin (arch != "") or script artifact over content.
func artifact(kind, name, version, goos, goarch, content string, at time.Time) (Artifact, []byte) {
	sum := sha256.Sum256([]byte(content))
	return Artifact{
		SHA256: hex.EncodeToString(sum[:]), Kind: kind, Name: name, Version: version, OS: goos, Arch: goarch,
		Size:        int64(len(content)),
		Manifest:    sdk.Manifest{Name: name, Version: version, Description: "d " + name, Params: []sdk.Param{{Name: "p", Type: sdk.TypeInt}}},
		HasManifest: true,
		Signature:   "-----BEGIN SSH SIGNATURE-----\nx\n-----END SSH SIGNATURE-----\n", SignerFingerprint: "SHA256:abc",
		SignerKeyType: "ssh-ed25519", PublishedBy: "alice", PublishedAt: at,
	}, []byte(content)
}

func mustPut(t *testing.T, s *Store, a Artifact, content []byte) {
	t.Helper()
	created, err := s.PutArtifact(context.Background(), a, content)
	if err != nil || !created {
		t.Fatalf("PutArtifact(%s %s %s): created %v, %v", a.Name, a.Version, a.Platform(), created, err)
	}
}

func TestPutGetArtifact(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	// Bytes that look like text and numbers, a NUL and invalid UTF-8: all kept as-is.
	for _, content := range []string{"42", "\x7fELF\x00\x01\xff\xfe binary", "#!/bin/sh\necho hi\n"} {
		a, b := artifact(KindPlugin, "p"+hex.EncodeToString([]byte(content[:1])), "1.0.0", "linux", "amd64", content, ts)
		mustPut(t, s, a, b)
		got, err := s.GetArtifact(ctx, a.SHA256)
		if err != nil {
			t.Fatal(err)
		}
		a.Sites = []string{AllSites} // published to every site by default
		if !reflect.DeepEqual(got, a) {
			t.Errorf("GetArtifact = %+v\nwant %+v", got, a)
		}
		blob, err := s.ArtifactContent(ctx, a.SHA256)
		if err != nil || !bytes.Equal(blob, b) {
			t.Errorf("ArtifactContent = %q, %v; want %q", blob, err, b)
		}
	}
	if _, err := s.GetArtifact(ctx, strings.Repeat("0", 64)); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetArtifact unknown: %v", err)
	}
	if _, err := s.ArtifactContent(ctx, strings.Repeat("0", 64)); !errors.Is(err, ErrNotFound) {
		t.Errorf("ArtifactContent unknown: %v", err)
	}
}

func TestPutArtifactRules(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	base, content := artifact(KindPlugin, "cacheclear", "1.0.0", "linux", "amd64", "v1 linux amd64", ts)
	mustPut(t, s, base, content)
	script, scontent := artifact(KindScript, "flushdns", "1.0.0", "linux,darwin", "", "#!/bin/sh\n", ts)
	mustPut(t, s, script, scontent)

	bad := base
	bad.SHA256 = strings.Repeat("a", 64)
	if _, err := s.PutArtifact(ctx, bad, content); err == nil || !strings.Contains(err.Error(), "does not match the content") {
		t.Errorf("wrong sha256 accepted: %v", err)
	}

	type file struct {
		a Artifact
		b []byte
	}
	mk := func(kind, name, version, goos, goarch, content string) file {
		a, b := artifact(kind, name, version, goos, goarch, content, ts)
		return file{a, b}
	}
	tests := []struct {
		name     string
		f        file
		created  bool
		conflict string // "" = want success
	}{
		{"same file again is idempotent", file{base, content}, false, ""},
		{"same tuple, other bytes", mk(KindPlugin, "cacheclear", "1.0.0", "linux", "amd64", "v1 rebuilt"), false,
			"plugin cacheclear 1.0.0 for linux/amd64 is already published with other content (sha256 " + base.SHA256 + ")"},
		{"same bytes, other version", mk(KindPlugin, "cacheclear", "1.0.1", "linux", "amd64", "v1 linux amd64"), false,
			"this file (sha256 " + base.SHA256 + ") is already published as plugin cacheclear 1.0.0 for linux/amd64"},
		{"other arch is another file", mk(KindPlugin, "cacheclear", "1.0.0", "linux", "arm64", "v1 linux arm64"), true, ""},
		{"other os is another file", mk(KindPlugin, "cacheclear", "1.0.0", "windows", "amd64", "v1 windows"), true, ""},
		{"script with disjoint os list", mk(KindScript, "flushdns", "1.0.0", "windows", "", "Write-Host hi"), true, ""},
		{"script with overlapping os list", mk(KindScript, "flushdns", "1.0.0", "darwin", "", "#!/bin/zsh\n"), false,
			"script flushdns 1.0.0 for linux,darwin is already published with other content"},
		{"script for any os overlaps", mk(KindScript, "flushdns", "1.0.0", "", "", "echo any"), false,
			"script flushdns 1.0.0 for linux,darwin is already published with other content"},
		{"same name as a plugin is another kind", mk(KindScript, "cacheclear", "1.0.0", "", "", "echo cc"), true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			created, err := s.PutArtifact(ctx, tt.f.a, tt.f.b)
			if tt.conflict != "" {
				var ce *ConflictError
				if !errors.Is(err, ErrArtifactConflict) || !errors.As(err, &ce) || !strings.Contains(err.Error(), tt.conflict) {
					t.Fatalf("err = %v; want a conflict containing %q", err, tt.conflict)
				}
				if tt.f.a.SHA256 != base.SHA256 {
					if _, err := s.ArtifactContent(ctx, tt.f.a.SHA256); !errors.Is(err, ErrNotFound) {
						t.Errorf("refused content was stored: %v", err)
					}
				}
				return
			}
			if err != nil || created != tt.created {
				t.Fatalf("PutArtifact = %v, %v; want created %v", created, err, tt.created)
			}
		})
	}
	if got, err := s.GetArtifact(ctx, base.SHA256); err != nil || got.Version != "1.0.0" {
		t.Errorf("the first publication changed: %+v, %v", got, err)
	}
}

func TestListAndResolveArtifacts(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	day := func(n int) time.Time { return ts.Add(time.Duration(n) * 24 * time.Hour) }
	put := func(kind, name, version, goos, goarch string, at time.Time) Artifact {
		a, b := artifact(kind, name, version, goos, goarch, kind+name+version+goos+goarch, at)
		mustPut(t, s, a, b)
		return a
	}
	// Published out of order; 1.10.0 must sort above 1.9.0 (not as text).
	p190 := put(KindPlugin, "cacheclear", "1.9.0", "linux", "amd64", day(1))
	p1100 := put(KindPlugin, "cacheclear", "1.10.0", "linux", "amd64", day(2))
	p1100w := put(KindPlugin, "cacheclear", "1.10.0", "windows", "amd64", day(2))
	p200rc := put(KindPlugin, "cacheclear", "2.0.0-rc1", "linux", "amd64", day(3))
	p120arm := put(KindPlugin, "cacheclear", "1.2.0", "linux", "arm64", day(4))
	pv2 := put(KindPlugin, "aaa", "v2.0.0", "darwin", "arm64", day(0))
	s1 := put(KindScript, "flushdns", "1.0.0", "linux,darwin", "", day(1))
	s1w := put(KindScript, "flushdns", "1.0.0", "windows", "", day(1))
	s2 := put(KindScript, "flushdns", "0.0.0+aaaaaaaaaaaa", "", "", day(5))
	s3 := put(KindScript, "flushdns", "0.0.0+bbbbbbbbbbbb", "", "", day(3))
	sFull := put(KindScript, "flushdns", "1.0.0-beta", "linux", "", day(9))
	s2v := put(KindScript, "flushdns", "2.0.0", "linux", "", day(0))

	names := func(as []Artifact) []string {
		var out []string
		for _, a := range as {
			out = append(out, a.Kind+":"+a.Name+"@"+a.Version+"/"+a.Platform())
		}
		return out
	}
	list := func(kind, name string) []string {
		t.Helper()
		as, err := s.ListArtifacts(ctx, kind, name)
		if err != nil {
			t.Fatal(err)
		}
		return names(as)
	}
	if got, want := list(KindPlugin, ""), names([]Artifact{pv2, p200rc, p1100, p1100w, p190, p120arm}); !reflect.DeepEqual(got, want) {
		t.Errorf("plugins:\n got %q\nwant %q", got, want)
	}
	if got, want := list(KindScript, "flushdns"), names([]Artifact{s2v, s1, s1w, sFull, s2, s3}); !reflect.DeepEqual(got, want) {
		t.Errorf("scripts:\n got %q\nwant %q", got, want)
	}
	if got := list("", "cacheclear"); len(got) != 5 {
		t.Errorf("all kinds named cacheclear: %q", got)
	}
	if got := list(KindPlugin, "nope"); len(got) != 0 {
		t.Errorf("unknown name: %q", got)
	}

	tests := []struct {
		name                          string
		kind, pname, version, os, arc string
		want                          Artifact
		notFound                      string
	}{
		{"newest for linux/amd64 (a pre-release is newest by core version)", KindPlugin, "cacheclear", "", "linux", "amd64", p200rc, ""},
		{"newest for windows", KindPlugin, "cacheclear", "", "windows", "amd64", p1100w, ""},
		{"newest for arm64 is older", KindPlugin, "cacheclear", "", "linux", "arm64", p120arm, ""},
		{"exact version", KindPlugin, "cacheclear", "1.9.0", "linux", "amd64", p190, ""},
		{"any platform", KindPlugin, "cacheclear", "1.10.0", "", "", p1100, ""},
		{"version missing", KindPlugin, "cacheclear", "3.0.0", "linux", "amd64", Artifact{},
			"no plugin cacheclear 3.0.0 in the catalog (newest is 2.0.0-rc1)"},
		{"platform missing", KindPlugin, "cacheclear", "1.10.0", "darwin", "arm64", Artifact{},
			"no plugin cacheclear 1.10.0 for darwin/arm64 in the catalog (published for linux/amd64, windows/amd64)"},
		{"name missing", KindPlugin, "nope", "", "linux", "amd64", Artifact{}, `no plugin "nope" in the catalog`},
		{"kind matters", KindScript, "cacheclear", "", "linux", "amd64", Artifact{}, `no script "cacheclear"`},
		{"script newest for linux", KindScript, "flushdns", "", "linux", "amd64", s2v, ""},
		{"script newest for windows", KindScript, "flushdns", "", "windows", "amd64", s1w, ""},
		{"script newest for darwin", KindScript, "flushdns", "", "darwin", "arm64", s1, ""},
		{"script for freebsd: any-OS one, newest published", KindScript, "flushdns", "", "freebsd", "amd64", s2, ""},
		{"script exact version per os", KindScript, "flushdns", "1.0.0", "windows", "", s1w, ""},
		{"script version not for this os", KindScript, "flushdns", "2.0.0", "windows", "", Artifact{},
			"no script flushdns 2.0.0 for windows in the catalog (published for linux)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.ResolveArtifact(ctx, tt.kind, tt.pname, tt.version, tt.os, tt.arc)
			if tt.notFound != "" {
				if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), tt.notFound) {
					t.Fatalf("err = %v; want ErrNotFound containing %q", err, tt.notFound)
				}
				return
			}
			if err != nil || got.SHA256 != tt.want.SHA256 {
				t.Fatalf("resolved %s %s, %v; want %s", got.Version, got.Platform(), err, tt.want.Version)
			}
		})
	}
}

// The catalog survives a reopen; the migration applies on an existing database.
func TestCatalogReopen(t *testing.T) {
	s, path := newStore(t)
	a, b := artifact(KindPlugin, "x", "1.0.0", "linux", "amd64", "content", ts)
	mustPut(t, s, a, b)
	s.Close()
	s2, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	got, err := s2.ArtifactContent(context.Background(), a.SHA256)
	if err != nil || !bytes.Equal(got, b) {
		t.Fatalf("after reopen: %q, %v", got, err)
	}
}
