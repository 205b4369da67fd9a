package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/patchbay/patchbay/plugins/sdk"
)

func TestParseScopes(t *testing.T) {
	tests := []struct {
		in      string
		want    []string
		wantErr string
	}{
		{"", allScopes, ""},
		{"temp", []string{"temp"}, ""},
		{" Temp , dns,,temp ", []string{"temp", "dns"}, ""},
		{"temp,user,package,dns", allScopes, ""},
		{",", nil, "empty"},
		{"temp,cookies", nil, `unknown scope "cookies"`},
		{"all", nil, "want a comma-separated list of temp, user, package, dns"},
	}
	for _, tt := range tests {
		got, err := parseScopes(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("parseScopes(%q) err = %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || len(got) != len(tt.want) {
			t.Errorf("parseScopes(%q) = %v, %v, want %v", tt.in, got, err, tt.want)
			continue
		}
		for _, s := range tt.want {
			if !got[s] {
				t.Errorf("parseScopes(%q) = %v, want %v", tt.in, got, tt.want)
			}
		}
	}
}

func TestParseConfig(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	resolved, err := filepath.EvalSymlinks(dir)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		params      sdk.Params
		wantErr     string
		wantRoot    string
		wantSandbox bool
		wantAge     time.Duration
	}{
		{"defaults", sdk.Params{}, "", systemRoot(), false, time.Hour},
		{"sandbox", sdk.Params{"root": dir, "min_age": "0s"}, "", resolved, true, 0},
		{"relative root", sdk.Params{"root": "x"}, "not an absolute path", "", false, 0},
		{"missing root", sdk.Params{"root": filepath.Join(dir, "none")}, "root: ", "", false, 0},
		{"file root", sdk.Params{"root": file}, "not a directory", "", false, 0},
		{"negative age", sdk.Params{"min_age": "-5m"}, "negative", "", false, 0},
		{"bad age", sdk.Params{"min_age": "1 hour"}, "not a duration", "", false, 0},
		{"user path", sdk.Params{"user": "a/b"}, "not an account name", "", false, 0},
		{"user dotdot", sdk.Params{"user": ".."}, "not an account name", "", false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseConfig(tt.params, time.Now())
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.root != tt.wantRoot || c.sandbox != tt.wantSandbox || c.minAge != tt.wantAge {
				t.Fatalf("config = %+v", c)
			}
		})
	}
}

func TestManifestIsValid(t *testing.T) {
	m := cacheClear{}.Manifest()
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	if _, err := m.ValidateParams(map[string]string{"scopes": "temp", "min_age": "90m", "user": "alice"}); err != nil {
		t.Fatal(err)
	}
}
