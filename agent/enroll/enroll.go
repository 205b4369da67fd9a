// Package enroll turns a fresh machine into an enrolled agent: it pins the
// relay's CA by fingerprint, sends a certificate request with an enrollment
// token to POST /v1/enroll, checks what comes back, and saves the identity.
//
// The private key is generated here and never leaves the machine. Nothing
// is written unless the relay accepted the request and every check on its
// answer passed, and an existing enrollment is only replaced with Force.
package enroll

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/patchbay/patchbay/agent/identity"
	"github.com/patchbay/patchbay/certs"
	"github.com/patchbay/patchbay/internal/apiv1"
	"github.com/patchbay/patchbay/internal/atomicfile"
	"github.com/patchbay/patchbay/internal/backoff"
	"github.com/patchbay/patchbay/internal/wire"
	"golang.org/x/crypto/ssh"
)

// Path is the enrollment endpoint, relative to the relay URL.
const Path = "/v1/enroll"

// MaxResponse bounds the relay's answer (the relay's own body limit).
const MaxResponse = 64 << 10

// DefaultTimeout bounds the whole enrollment request.
const DefaultTimeout = 30 * time.Second

// Options describe one enrollment.
type Options struct {
	Server        string            // relay URL, https://HOST:PORT (the scheme may be omitted): enrollment goes there
	OtherServers  []string          // the other relays of the tier, tried after Server when the link is lost (identity.Servers)
	Token         string            // enrollment token from `patchbay tokens create`
	CAFingerprint string            // the relay CA's fingerprint, any form certs.ParseFingerprint accepts
	Dir           string            // data directory to write the identity to
	Tags          map[string]string // the agent's own tags; the token's scoped tags win on the relay
	Hostname      string            // name to report instead of os.Hostname(), at enrollment and on every connection; "" means the live host name
	Force         bool              // replace an existing enrollment in Dir

	// HTTPClient, if set, is used instead of a fresh client pinned to
	// CAFingerprint; build it with NewHTTPClient (a load generator enrolling
	// thousands of agents shares one). The returned CA is checked against
	// CAFingerprint either way.
	HTTPClient *http.Client
}

// RelayError is a refusal from the relay: a non-2xx answer. Message is the
// relay's own words (e.g. "enrollment token expired").
type RelayError struct {
	Status  int
	Message string
}

func (e *RelayError) Error() string { return e.Message }

// Enroll enrolls the agent and saves its identity in opts.Dir. See Request
// for the checks made; Save for how files are written.
func Enroll(ctx context.Context, opts Options) (*identity.Identity, error) {
	if opts.Dir == "" {
		return nil, errors.New("enroll: a data directory is required")
	}
	// Refuse before a token use is spent on a request whose result could not be kept.
	if path, ok, err := identity.Enrolled(opts.Dir); err != nil {
		return nil, fmt.Errorf("enroll: %w", err)
	} else if ok && !opts.Force {
		return nil, fmt.Errorf("enroll: %s already holds an enrollment (%s); pass --force to replace it with a new identity", opts.Dir, describe(opts.Dir, path))
	}
	if err := identity.MakeDir(opts.Dir); err != nil {
		return nil, fmt.Errorf("enroll: %w", err)
	}
	if len(opts.OtherServers) > 0 {
		// Checked before a token use is spent.
		if err := (&identity.Identity{}).SetServers(append([]string{opts.Server}, opts.OtherServers...)); err != nil {
			return nil, fmt.Errorf("enroll: --server: %w", err)
		}
	}
	id, sshUserCA, err := request(ctx, opts)
	if err != nil {
		return nil, err
	}
	if len(opts.OtherServers) > 0 {
		// In the order given, whichever relay answered.
		if err := id.SetServers(append([]string{opts.Server}, opts.OtherServers...)); err != nil {
			return nil, fmt.Errorf("enroll: --server: %w", err)
		}
	}
	if err := identity.Save(id); err != nil {
		return nil, fmt.Errorf("enroll: agent %s was enrolled but its identity could not be saved (enroll again with --force and a new token): %w", id.AgentID, err)
	}
	if err := saveSSHUserCA(opts.Dir, sshUserCA); err != nil {
		return nil, fmt.Errorf("enroll: agent %s was enrolled but %w", id.AgentID, err)
	}
	return id, nil
}

// describe names the existing enrollment for an error message.
func describe(dir, path string) string {
	if old, err := identity.Load(dir); err == nil {
		return fmt.Sprintf("agent %s of %s, in %s", old.AgentID, old.ServerURL, path)
	}
	return path
}

// Request performs the enrollment exchange and returns the identity in
// memory, with Dir set to opts.Dir but nothing written. It generates a key,
// posts the CSR over TLS pinned to opts.CAFingerprint, and checks the
// answer: the returned CA has the pinned fingerprint, the certificate is for
// our key, is signed by that CA and names the returned agent ID.
func Request(ctx context.Context, opts Options) (*identity.Identity, error) {
	id, _, err := request(ctx, opts)
	return id, err
}

// request is Request, also returning the relay's SSH user CA.
func request(ctx context.Context, opts Options) (*identity.Identity, string, error) {
	id, resp, err := requestResp(ctx, opts)
	if err != nil {
		return nil, "", err
	}
	return id, resp.SSHUserCA, nil
}

func requestResp(ctx context.Context, opts Options) (*identity.Identity, *apiv1.EnrollResponse, error) {
	var servers []string
	for _, u := range append([]string{opts.Server}, opts.OtherServers...) {
		server, err := identity.NormalizeServerURL(u)
		if err != nil {
			return nil, nil, fmt.Errorf("enroll: %w", err)
		}
		if !slices.Contains(servers, server) {
			servers = append(servers, server)
		}
	}
	fp, err := certs.ParseFingerprint(opts.CAFingerprint)
	if err != nil {
		return nil, nil, fmt.Errorf("enroll: --ca-fingerprint: %w", err)
	}
	token := strings.TrimSpace(opts.Token)
	if token == "" {
		return nil, nil, errors.New("enroll: an enrollment token is required (patchbay tokens create)")
	}
	if err := identity.CheckTags(opts.Tags); err != nil {
		return nil, nil, fmt.Errorf("enroll: --tags: %w", err)
	}
	hostname := opts.Hostname
	if hostname == "" {
		if hostname, err = os.Hostname(); err != nil {
			return nil, nil, fmt.Errorf("enroll: host name: %w; pass --hostname", err)
		}
	}
	if probe := (wire.Inventory{Hostname: hostname, OS: "x", Arch: "x"}); probe.Validate() != nil {
		return nil, nil, fmt.Errorf("enroll: host name %q must be 1-253 printable characters", hostname)
	}

	key, err := certs.NewKey()
	if err != nil {
		return nil, nil, fmt.Errorf("enroll: %w", err)
	}
	csr, err := certs.CreateCSR(key, hostname)
	if err != nil {
		return nil, nil, fmt.Errorf("enroll: %w", err)
	}
	resp, server, err := postAny(ctx, opts.HTTPClient, servers, fp, apiv1.EnrollRequest{Token: token, CSR: csr, Hostname: hostname, Tags: opts.Tags})
	if err != nil {
		return nil, nil, fmt.Errorf("enroll: %w", err)
	}
	id, err := verify(resp, key, fp, server, opts)
	if err != nil {
		return nil, nil, fmt.Errorf("enroll: %w", err)
	}
	return id, resp, nil
}

// enrollRounds is how many times enrollment goes through the list of
// relays, when there are several, before it gives up; failover the
// jittered backoff between two tries (full jitter, as the agent's link:
// agents enrolling together through a tier that lost a relay spread out).
const enrollRounds = 2

var failover = backoff.Backoff{Base: 500 * time.Millisecond, Max: 5 * time.Second, Full: true}

// postAny posts the request to each relay of servers in turn, as the
// agent's link fails over, until one answers: a relay that cannot be
// reached, or that answers 5xx (a proxy before a relay that is down),
// passes the request to the next after a jittered delay. A refusal (4xx) is
// final: the token is the tier's, and the next relay would refuse it too.
// It returns the answer and the relay that gave it.
func postAny(ctx context.Context, shared *http.Client, servers []string, fp string, body apiv1.EnrollRequest) (*apiv1.EnrollResponse, string, error) {
	rounds := 1
	if len(servers) > 1 {
		rounds = enrollRounds
	}
	b := failover
	var errs []string
	for i := range rounds * len(servers) {
		if i > 0 && !backoff.Sleep(ctx, b.Next()) {
			errs = append(errs, ctx.Err().Error())
			break
		}
		server := servers[i%len(servers)]
		client := shared
		if client == nil {
			var err error
			if client, err = NewHTTPClient(server, fp); err != nil {
				return nil, "", err
			}
		}
		resp, err := post(ctx, client, server, body)
		if err == nil {
			return resp, server, nil
		}
		var re *RelayError
		if len(servers) == 1 || errors.As(err, &re) && re.Status < 500 || ctx.Err() != nil {
			return nil, "", err
		}
		errs = append(errs, err.Error())
	}
	return nil, "", fmt.Errorf("no relay of --server %s took the enrollment (%s): check that one of them is up and reachable from here",
		strings.Join(servers, ", "), strings.Join(errs, "; "))
}

// NewHTTPClient returns an HTTP client for the relay at serverURL that trusts
// only the CA with fingerprint fp, honours HTTPS_PROXY and NO_PROXY, and
// gives up after DefaultTimeout.
func NewHTTPClient(serverURL, fp string) (*http.Client, error) {
	server, err := identity.NormalizeServerURL(serverURL)
	if err != nil {
		return nil, err
	}
	u, _ := url.Parse(server)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = certs.PinnedClientConfig(fp, u.Hostname())
	return &http.Client{
		Transport: tr,
		Timeout:   DefaultTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return errors.New("the relay answered with a redirect; check --server")
		},
	}, nil
}

// post sends the request and decodes a 2xx answer; a refusal becomes a
// *RelayError carrying the relay's message.
func post(ctx context.Context, client *http.Client, server string, body apiv1.EnrollRequest) (*apiv1.EnrollResponse, error) {
	raw, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	endpoint := server + Path
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	res, err := client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("contact relay at %s: %w", endpoint, err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(io.LimitReader(res.Body, MaxResponse+1))
	if err != nil {
		return nil, fmt.Errorf("read relay answer: %w", err)
	}
	if len(data) > MaxResponse {
		return nil, fmt.Errorf("relay answer larger than %d bytes", MaxResponse)
	}
	if res.StatusCode < 200 || res.StatusCode > 299 {
		return nil, relayError(res, data)
	}
	var out apiv1.EnrollResponse
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, fmt.Errorf("relay answer from %s is not an enrollment response (%v); check --server", endpoint, err)
	}
	return &out, nil
}

// relayError builds the error for a non-2xx answer: the relay's message
// verbatim when the body is the API's JSON error, else the status and the
// start of the body (a proxy's error page, say).
func relayError(res *http.Response, body []byte) error {
	var e apiv1.Error
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		return &RelayError{Status: res.StatusCode, Message: e.Error}
	}
	text := strings.TrimSpace(string(body))
	if len(text) > 200 || !utf8.ValidString(text) {
		text = ""
	}
	msg := fmt.Sprintf("relay answered %s", res.Status)
	if text != "" {
		msg += ": " + text
	}
	if res.StatusCode == http.StatusNotFound {
		msg += " (is --server the relay's URL?)"
	}
	return &RelayError{Status: res.StatusCode, Message: msg}
}

// verify checks the relay's answer against what we sent and pinned, and
// builds the identity.
func verify(resp *apiv1.EnrollResponse, key *ecdsa.PrivateKey, fp, server string, opts Options) (*identity.Identity, error) {
	ca, err := certs.ParseCertPEM([]byte(resp.CA))
	if err != nil {
		return nil, fmt.Errorf("relay returned an unusable CA certificate: %w", err)
	}
	if got := certs.Fingerprint(ca); got != fp {
		return nil, fmt.Errorf("relay returned CA %s but --ca-fingerprint pins %s; refusing it", got, fp)
	}
	cert, err := certs.ParseCertPEM([]byte(resp.Certificate))
	if err != nil {
		return nil, fmt.Errorf("relay returned an unusable certificate: %w", err)
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return nil, errors.New("relay returned a certificate for another key")
	}
	if cert.Subject.CommonName != resp.AgentID {
		return nil, fmt.Errorf("relay returned a certificate for %q but agent id %q", cert.Subject.CommonName, resp.AgentID)
	}
	if err := cert.CheckSignatureFrom(ca); err != nil {
		return nil, fmt.Errorf("relay returned a certificate not signed by its CA: %w", err)
	}
	if !slices.Contains(cert.ExtKeyUsage, x509.ExtKeyUsageClientAuth) {
		return nil, errors.New("relay returned a certificate without client authentication usage")
	}
	if err := identity.CheckTags(resp.Tags); err != nil {
		return nil, fmt.Errorf("relay returned invalid tags: %w", err)
	}
	id, err := identity.New(opts.Dir, server, opts.Tags, key, cert, ca, time.Now())
	if err != nil {
		return nil, fmt.Errorf("relay answer: %w", err)
	}
	id.RelayTags = resp.Tags
	id.Hostname = opts.Hostname
	return id, nil
}

// saveSSHUserCA pins the relay's SSH user CA learnt at enrollment (replacing
// what an earlier enrollment pinned) and drops a host certificate from an
// earlier enrollment; the agent gets a new one when it connects.
func saveSSHUserCA(dir, key string) error {
	_ = os.Remove(filepath.Join(dir, identity.SSHHostCertFile))
	if key == "" {
		return nil // a relay without sessions; the agent learns it later
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(key))
	if err != nil {
		return fmt.Errorf("the relay sent an unusable SSH user CA: %w", err)
	}
	if err := atomicfile.Write(filepath.Join(dir, identity.SSHUserCAFile), ssh.MarshalAuthorizedKey(pub), 0o644); err != nil {
		return fmt.Errorf("pin SSH user CA: %w", err)
	}
	return nil
}
