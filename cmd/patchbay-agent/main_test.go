package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/patchbay/patchbay/agent/identity"
	"github.com/patchbay/patchbay/certs"
	"github.com/patchbay/patchbay/internal/apiv1"
)

func execute(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	root := newRoot(&out)
	root.SetIn(strings.NewReader(stdin))
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), err
}

func TestEnrollCommand(t *testing.T) {
	dir := t.TempDir()
	ca, err := certs.LoadOrCreateCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := certs.LoadOrCreateServerCert(dir, ca, []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	var got apiv1.EnrollRequest
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewDecoder(r.Body).Decode(&got)
		id := uuid.NewString()
		der, err := ca.SignAgentCSR(got.CSR, id, time.Hour)
		if err != nil {
			t.Error(err)
			return
		}
		json.NewEncoder(w).Encode(apiv1.EnrollResponse{AgentID: id, Certificate: string(certs.CertPEM(der)), CA: string(ca.CertPEM), Tags: got.Tags})
	}))
	srv.TLS = ca.ServerTLSConfig(cert)
	srv.StartTLS()
	defer srv.Close()

	data := filepath.Join(t.TempDir(), "agent data")
	out, err := execute(t, "pbe_secret\n", "enroll", "--server", srv.URL, "--token-file", "-",
		"--ca-fingerprint", ca.Fingerprint(), "--data", data, "--tags", "site=paris,role=kiosk", "--tags", "floor=2")
	if err != nil {
		t.Fatalf("enroll: %v\n%s", err, out)
	}
	id, err := identity.Load(data)
	if err != nil {
		t.Fatal(err)
	}
	if got.Token != "pbe_secret" || len(got.Tags) != 3 {
		t.Errorf("request token %q tags %v", got.Token, got.Tags)
	}
	for _, want := range []string{"Enrolled as agent " + id.AgentID, "floor=2,role=kiosk,site=paris", "patchbay-agent run --data '" + data + "'"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestRunNotEnrolled(t *testing.T) {
	dir := t.TempDir()
	_, err := execute(t, "", "run", "--data", dir, "--log-format", "json")
	if err == nil || !strings.Contains(err.Error(), "agent not enrolled") {
		t.Fatalf("run on an empty directory: %v", err)
	}
}

func TestVersion(t *testing.T) {
	out, err := execute(t, "", "version")
	if err != nil || !strings.HasPrefix(out, "patchbay-agent dev") {
		t.Fatalf("version: %q %v", out, err)
	}
}

func TestParseTags(t *testing.T) {
	tags, err := parseTags([]string{"a=1, b=x/y", "c="})
	if err != nil || len(tags) != 3 || tags["b"] != "x/y" || tags["c"] != "" {
		t.Fatalf("parseTags = %v, %v", tags, err)
	}
	for _, bad := range [][]string{{"a"}, {"a=1", "a=2"}, {"a=b c"}, {"-a=1"}} {
		if _, err := parseTags(bad); err == nil {
			t.Errorf("parseTags(%q) accepted", bad)
		}
	}
}

func TestReadToken(t *testing.T) {
	t.Setenv(envToken, "pbe_env")
	if tok, err := readToken("", "", nil); err != nil || tok != "pbe_env" {
		t.Errorf("env token: %q %v", tok, err)
	}
	if tok, err := readToken(" pbe_flag ", "", nil); err != nil || tok != "pbe_flag" {
		t.Errorf("flag token: %q %v", tok, err)
	}
	if _, err := readToken("pbe_flag", "-", strings.NewReader("x")); err == nil {
		t.Error("--token and --token-file together accepted")
	}
	t.Setenv(envToken, "")
	if _, err := readToken("", "", nil); err == nil || !strings.Contains(err.Error(), "patchbay tokens create") {
		t.Errorf("missing token: %v", err)
	}
}

func TestDefaultDataDir(t *testing.T) {
	t.Setenv(envData, "/srv/pba")
	if d := defaultDataDir(); d != "/srv/pba" {
		t.Errorf("with %s: %q", envData, d)
	}
	t.Setenv(envData, "")
	if d := defaultDataDir(); d == "" || !filepath.IsAbs(d) {
		t.Errorf("default data dir %q", d)
	}
}
