package enroll

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/patchbay/patchbay/agent/identity"
	"github.com/patchbay/patchbay/certs"
	"github.com/patchbay/patchbay/internal/apiv1"
)

// relay is a TLS server implementing POST /v1/enroll with a real CA.
type relay struct {
	srv      *httptest.Server
	ca       *certs.CA
	requests atomic.Int32
	last     atomic.Pointer[apiv1.EnrollRequest]
	// answerCA, if set, is returned instead of the server's own CA.
	answerCA []byte
}

const goodToken = "pbe_good"

func newRelay(t *testing.T) *relay {
	t.Helper()
	dir := t.TempDir()
	ca, err := certs.LoadOrCreateCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := certs.LoadOrCreateServerCert(dir, ca, []string{"127.0.0.1", "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	r := &relay{ca: ca}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/enroll", r.enroll)
	r.srv = httptest.NewUnstartedServer(mux)
	r.srv.TLS = ca.ServerTLSConfig(cert)
	r.srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are the point of some tests
	r.srv.StartTLS()
	t.Cleanup(r.srv.Close)
	return r
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func (r *relay) enroll(w http.ResponseWriter, req *http.Request) {
	r.requests.Add(1)
	var in apiv1.EnrollRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, req.Body, 64<<10)).Decode(&in); err != nil {
		writeJSON(w, http.StatusBadRequest, apiv1.Error{Error: "bad request: " + err.Error()})
		return
	}
	r.last.Store(&in)
	if in.Token != goodToken {
		writeJSON(w, http.StatusForbidden, apiv1.Error{Error: "enrollment token expired"})
		return
	}
	id := uuid.NewString()
	der, err := r.ca.SignAgentCSR(in.CSR, id, 24*time.Hour)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, apiv1.Error{Error: err.Error()})
		return
	}
	tags := map[string]string{"site": "paris"} // scoped by the token
	for k, v := range in.Tags {
		if _, scoped := tags[k]; !scoped {
			tags[k] = v
		}
	}
	caPEM := r.ca.CertPEM
	if r.answerCA != nil {
		caPEM = r.answerCA
	}
	writeJSON(w, http.StatusOK, apiv1.EnrollResponse{AgentID: id, Certificate: string(certs.CertPEM(der)), CA: string(caPEM), Tags: tags})
}

func (r *relay) options(dir string) Options {
	return Options{
		Server:        r.srv.URL,
		Token:         goodToken,
		CAFingerprint: strings.ToUpper(r.ca.Fingerprint()), // any accepted form
		Dir:           dir,
		Tags:          map[string]string{"role": "kiosk"},
		Hostname:      "till-07",
	}
}

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func TestEnrollWritesIdentity(t *testing.T) {
	r := newRelay(t)
	dir := filepath.Join(t.TempDir(), "agent")
	id, err := Enroll(context.Background(), r.options(dir))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := uuid.Parse(id.AgentID); err != nil {
		t.Errorf("agent id %q: %v", id.AgentID, err)
	}
	if got := r.last.Load(); got.Hostname != "till-07" || got.Tags["role"] != "kiosk" {
		t.Errorf("request hostname %q tags %v", got.Hostname, got.Tags)
	}
	if m := mode(t, dir); m != 0o700 {
		t.Errorf("data directory mode %o, want 700", m)
	}
	for name, want := range map[string]os.FileMode{
		identity.KeyFile: 0o600, identity.ConfigFile: 0o600, identity.CertFile: 0o644, identity.CAFile: 0o644,
	} {
		if m := mode(t, filepath.Join(dir, name)); m != want {
			t.Errorf("%s mode %o, want %o", name, m, want)
		}
	}

	loaded, err := identity.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if loaded.AgentID != id.AgentID || loaded.CAFingerprint != r.ca.Fingerprint() || loaded.ServerURL != r.srv.URL {
		t.Errorf("loaded %s %s %s, want %s %s %s", loaded.AgentID, loaded.CAFingerprint, loaded.ServerURL, id.AgentID, r.ca.Fingerprint(), r.srv.URL)
	}
	if loaded.Tags["role"] != "kiosk" || len(loaded.Tags) != 1 {
		t.Errorf("own tags %v, want role=kiosk", loaded.Tags)
	}
	if loaded.RelayTags["site"] != "paris" || loaded.RelayTags["role"] != "kiosk" {
		t.Errorf("relay tags %v", loaded.RelayTags)
	}
	if loaded.Hostname != "till-07" {
		t.Errorf("hostname %q", loaded.Hostname)
	}
	if loaded.EnrolledAt.IsZero() || time.Since(loaded.EnrolledAt) > time.Minute {
		t.Errorf("enrolled_at %v", loaded.EnrolledAt)
	}
	if tc := loaded.TLSConfig(); tc.ServerName != "127.0.0.1" || len(tc.Certificates) != 1 || tc.RootCAs == nil {
		t.Errorf("tls config: server name %q, %d certificates", tc.ServerName, len(tc.Certificates))
	}
	// The identity really is usable for mutual TLS against the relay's CA.
	if _, err := loaded.Cert.Leaf.Verify(x509Opts(r.ca)); err != nil {
		t.Errorf("agent certificate does not verify against the CA: %v", err)
	}
}

func TestEnrollWrongFingerprintWritesNothing(t *testing.T) {
	r := newRelay(t)
	other, err := certs.LoadOrCreateCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	opts := r.options(dir)
	opts.CAFingerprint = other.Fingerprint()
	_, err = Enroll(context.Background(), opts)
	if err == nil {
		t.Fatal("enrollment with the wrong fingerprint succeeded")
	}
	for _, want := range []string{"fingerprint mismatch", other.Fingerprint(), r.ca.Fingerprint(), "check --ca-fingerprint"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if n := r.requests.Load(); n != 0 {
		t.Errorf("the token was sent to an unpinned server (%d requests)", n)
	}
	assertEmpty(t, dir)
}

func TestEnrollRefusesSubstitutedCA(t *testing.T) {
	r := newRelay(t)
	other, err := certs.LoadOrCreateCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	r.answerCA = other.CertPEM
	dir := t.TempDir()
	_, err = Enroll(context.Background(), r.options(dir))
	if err == nil || !strings.Contains(err.Error(), "relay returned CA "+other.Fingerprint()) {
		t.Fatalf("error %v, want a refusal naming the returned CA", err)
	}
	assertEmpty(t, dir)
}

func TestEnrollSurfacesRelayError(t *testing.T) {
	r := newRelay(t)
	dir := t.TempDir()
	opts := r.options(dir)
	opts.Token = "pbe_old"
	_, err := Enroll(context.Background(), opts)
	if err == nil || err.Error() != "enroll: enrollment token expired" {
		t.Fatalf("error %v, want the relay's message", err)
	}
	var re *RelayError
	if !errors.As(err, &re) || re.Status != http.StatusForbidden {
		t.Errorf("error %#v is not a 403 RelayError", err)
	}
	assertEmpty(t, dir)
}

func TestEnrollRefusesExistingEnrollment(t *testing.T) {
	r := newRelay(t)
	dir := t.TempDir()
	first, err := Enroll(context.Background(), r.options(dir))
	if err != nil {
		t.Fatal(err)
	}
	_, err = Enroll(context.Background(), r.options(dir))
	if err == nil {
		t.Fatal("second enrollment without Force succeeded")
	}
	for _, want := range []string{filepath.Join(dir, identity.ConfigFile), first.AgentID, "--force"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if n := r.requests.Load(); n != 1 {
		t.Errorf("refused enrollment still reached the relay (%d requests)", n)
	}
	if id, err := identity.Load(dir); err != nil || id.AgentID != first.AgentID {
		t.Fatalf("first identity damaged: %v", err)
	}

	opts := r.options(dir)
	opts.Force = true
	second, err := Enroll(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	id, err := identity.Load(dir)
	if err != nil || id.AgentID != second.AgentID || second.AgentID == first.AgentID {
		t.Fatalf("after --force: loaded %v (%v), first %s, second %s", id, err, first.AgentID, second.AgentID)
	}
}

func TestEnrollValidatesInputBeforeContactingRelay(t *testing.T) {
	r := newRelay(t)
	for name, tc := range map[string]struct {
		mutate func(*Options)
		want   string
	}{
		"bad tag":         {func(o *Options) { o.Tags = map[string]string{"site": "a b"} }, "--tags"},
		"bad fingerprint": {func(o *Options) { o.CAFingerprint = "md5:00" }, "sha256:"},
		"no token":        {func(o *Options) { o.Token = " " }, "token is required"},
		"http":            {func(o *Options) { o.Server = "http://127.0.0.1:1" }, "only speaks HTTPS"},
		"bad hostname":    {func(o *Options) { o.Hostname = "a\nb" }, "host name"},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			opts := r.options(dir)
			tc.mutate(&opts)
			_, err := Enroll(context.Background(), opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one mentioning %q", err, tc.want)
			}
			assertEmpty(t, dir)
		})
	}
	if n := r.requests.Load(); n != 0 {
		t.Errorf("invalid input reached the relay (%d requests)", n)
	}
}

func TestRequestSharesClientAndWritesNothing(t *testing.T) {
	r := newRelay(t)
	client, err := NewHTTPClient(r.srv.URL, r.ca.Fingerprint())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	opts := r.options(dir)
	opts.HTTPClient = client
	seen := map[string]bool{}
	for range 3 {
		id, err := Request(context.Background(), opts)
		if err != nil {
			t.Fatal(err)
		}
		if seen[id.AgentID] {
			t.Errorf("agent id %s issued twice", id.AgentID)
		}
		seen[id.AgentID] = true
	}
	assertEmpty(t, dir)
}

func assertEmpty(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("%s was written", filepath.Join(dir, e.Name()))
	}
}

func x509Opts(ca *certs.CA) x509.VerifyOptions {
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	return x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
}

// closedURL is an https URL on a loopback port where nothing listens.
func closedURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "https://" + addr
}

// With several relays, enrollment goes through the first that answers: the
// first --server is down (a closed port), the second enrolls the agent, and
// the identity keeps the relays in the order given.
func TestEnrollFailsOverToNextServer(t *testing.T) {
	r := newRelay(t)
	dead := closedURL(t)
	dir := filepath.Join(t.TempDir(), "agent")
	opts := r.options(dir)
	opts.Server, opts.OtherServers = dead, []string{r.srv.URL}
	id, err := Enroll(context.Background(), opts)
	if err != nil {
		t.Fatalf("enroll with the first relay down: %v", err)
	}
	if n := r.requests.Load(); n != 1 {
		t.Fatalf("the live relay got %d requests, want 1", n)
	}
	loaded, err := identity.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if loaded.AgentID != id.AgentID || !slices.Equal(loaded.Servers, []string{dead, r.srv.URL}) || loaded.ServerURL != dead {
		t.Fatalf("saved agent %s with servers %v (first %s), want %s with %v", loaded.AgentID, loaded.Servers, loaded.ServerURL, id.AgentID, []string{dead, r.srv.URL})
	}

	// A refusal is final: the next relay is not asked to spend the token.
	other := newRelay(t)
	opts = r.options(filepath.Join(t.TempDir(), "agent"))
	opts.Token = "pbe_bad"
	opts.CAFingerprint = r.ca.Fingerprint()
	opts.OtherServers = []string{other.srv.URL}
	var re *RelayError
	if _, err := Enroll(context.Background(), opts); !errors.As(err, &re) || other.requests.Load() != 0 {
		t.Fatalf("a refused enrollment: %v, %d requests to the next relay", err, other.requests.Load())
	}

	// None up: the error names them all.
	opts = r.options(filepath.Join(t.TempDir(), "agent"))
	dead2 := closedURL(t)
	opts.Server, opts.OtherServers = dead, []string{dead2}
	if _, err := Enroll(context.Background(), opts); err == nil || !strings.Contains(err.Error(), dead) || !strings.Contains(err.Error(), dead2) {
		t.Fatalf("enroll with every relay down: %v", err)
	}
}
