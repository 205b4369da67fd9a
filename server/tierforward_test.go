package server

import (
	"os"
	"strings"
	"testing"

	"github.com/patchbay/patchbay/certs"
)

func TestDefaultTierURL(t *testing.T) {
	host, _ := os.Hostname()
	for _, tt := range []struct {
		listen    string
		hostnames []string
		want      string
	}{
		{"127.0.0.1:8443", nil, "https://127.0.0.1:8443"},
		{":8443", []string{"relay-a.example.com", "10.0.0.1"}, "https://relay-a.example.com:8443"},
		{"0.0.0.0:9000", nil, "https://" + host + ":9000"},
		{"[::1]:8443", nil, "https://[::1]:8443"},
		{":8443", []string{"[fd00::1]"}, "https://[fd00::1]:8443"},
	} {
		got, err := DefaultTierURL(tt.listen, tt.hostnames)
		if err != nil || got != tt.want {
			t.Errorf("DefaultTierURL(%q, %q) = %q, %v; want %q", tt.listen, tt.hostnames, got, err, tt.want)
		}
	}
	if _, err := DefaultTierURL("8443", nil); err == nil || !strings.Contains(err.Error(), "--tier-url") {
		t.Errorf("a listen address without a port: %v", err)
	}
}

func TestCheckTierURL(t *testing.T) {
	dir := t.TempDir()
	ca, err := certs.LoadOrCreateCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := certs.LoadOrCreateServerCert(dir, ca, []string{"relay-a.example.com", "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, ok := range []string{"https://relay-a.example.com:8443", "https://127.0.0.1:1"} {
		if err := checkTierURL(ok, cert); err != nil {
			t.Errorf("checkTierURL(%q): %v", ok, err)
		}
	}
	for bad, want := range map[string]string{
		"":                                    "https://HOST:PORT",
		"http://127.0.0.1:8443":               "https://HOST:PORT",
		"https://127.0.0.1":                   "https://HOST:PORT",
		"https://127.0.0.1:8443/x":            "https://HOST:PORT",
		"https://relay-b.example.com:8443":    "--hostname relay-b.example.com",
		"https://user@relay-a.example.com:84": "https://HOST:PORT",
	} {
		if err := checkTierURL(bad, cert); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("checkTierURL(%q) = %v, want an error with %q", bad, err, want)
		}
	}
}
