// Command oidcprovider is the OpenID provider the end-to-end tests sign in
// at. It is zitadel/oidc's example provider (the exampleop and storage
// packages of github.com/zitadel/oidc/v3: the library's discovery,
// authorization, token, userinfo and key endpoints, PKCE, nonces, and its
// own login page), run with what a test needs and the example lacks:
//
//   - one confidential web client (-client-id, -client-secret-file,
//     -redirect-uri) instead of the example's fixed ones;
//   - people read from a JSON file (-users), re-read at every lookup, so a
//     test changes a person's groups the way an admin does at a real
//     provider, without a restart;
//   - a "groups" scope and claim (in the ID token) listing the person's
//     groups, as Dex, Keycloak or Okta can send;
//   - HTTPS on 127.0.0.1 with a certificate of a CA it makes at start
//     (written to -tls-dir/ca.pem for the relay's --oidc-ca).
//
// It prints "issuer https://127.0.0.1:PORT/" on standard output once it
// accepts connections. For tests only: passwords are plain text in -users.
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/text/language"
)

// person is one entry of the -users file.
type person struct {
	ID            string   `json:"id"`
	Username      string   `json:"username"`
	Password      string   `json:"password"`
	Email         string   `json:"email"`
	EmailVerified bool     `json:"email_verified"`
	Name          string   `json:"name"`
	Groups        []string `json:"groups"`
}

// people implements storage.UserStore from the -users file.
type people struct {
	path string
	log  *slog.Logger
}

func (p people) load() []person {
	b, err := os.ReadFile(p.path)
	var out []person
	if err == nil {
		err = json.Unmarshal(b, &out)
	}
	if err != nil {
		p.log.Error("read users", "file", p.path, "error", err)
	}
	return out
}

func (p people) find(match func(person) bool) *person {
	for _, u := range p.load() {
		if match(u) {
			return &u
		}
	}
	return nil
}

func toUser(u *person) *storage.User {
	if u == nil {
		return nil
	}
	first, last, _ := strings.Cut(u.Name, " ")
	return &storage.User{ID: u.ID, Username: u.Username, Password: u.Password, FirstName: first, LastName: last,
		Email: u.Email, EmailVerified: u.EmailVerified, PreferredLanguage: language.English}
}

func (p people) GetUserByID(id string) *storage.User {
	return toUser(p.find(func(u person) bool { return u.ID == id }))
}

func (p people) GetUserByUsername(name string) *storage.User {
	return toUser(p.find(func(u person) bool { return u.Username == name }))
}

func (p people) ExampleClientID() string { return storage.ServiceUserID }

func (p people) groups(id string) []string {
	if u := p.find(func(u person) bool { return u.ID == id }); u != nil && u.Groups != nil {
		return u.Groups
	}
	return []string{}
}

// groupsStorage is the example storage plus the groups scope and claim.
type groupsStorage struct {
	*storage.Storage
	people people
}

type groupsClient struct{ op.Client }

func (c groupsClient) IsScopeAllowed(scope string) bool {
	return scope == "groups" || c.Client.IsScopeAllowed(scope)
}

func (s *groupsStorage) GetClientByClientID(ctx context.Context, id string) (op.Client, error) {
	c, err := s.Storage.GetClientByClientID(ctx, id)
	if err != nil {
		return nil, err
	}
	return groupsClient{c}, nil
}

// SetUserinfoFromRequest fills the ID token's claims.
func (s *groupsStorage) SetUserinfoFromRequest(ctx context.Context, ui *oidc.UserInfo, req op.IDTokenRequest, scopes []string) error {
	if err := s.Storage.SetUserinfoFromRequest(ctx, ui, req, scopes); err != nil {
		return err
	}
	if slices.Contains(scopes, "groups") {
		ui.AppendClaims("groups", s.people.groups(req.GetSubject()))
	}
	return nil
}

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	tlsDir := flag.String("tls-dir", "", "directory for the CA (ca.pem) made at start")
	usersFile := flag.String("users", "", "JSON file of people: [{id, username, password, email, email_verified, name, groups}]")
	clientID := flag.String("client-id", "patchbay", "the web client's ID")
	secretFile := flag.String("client-secret-file", "", "file holding the web client's secret")
	redirect := flag.String("redirect-uri", "", "the web client's redirect URI")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if err := run(log, *listen, *tlsDir, *usersFile, *clientID, *secretFile, *redirect); err != nil {
		fmt.Fprintln(os.Stderr, "oidcprovider:", err)
		os.Exit(1)
	}
}

func run(log *slog.Logger, listen, tlsDir, usersFile, clientID, secretFile, redirect string) error {
	if tlsDir == "" || usersFile == "" || secretFile == "" || redirect == "" {
		return fmt.Errorf("-tls-dir, -users, -client-secret-file and -redirect-uri are required")
	}
	secret, err := os.ReadFile(secretFile)
	if err != nil {
		return err
	}
	cert, err := makeCert(tlsDir)
	if err != nil {
		return fmt.Errorf("make the TLS certificate: %w", err)
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	issuer := fmt.Sprintf("https://%s/", ln.Addr())
	storage.RegisterClients(storage.WebClient(clientID, strings.TrimSpace(string(secret)), redirect))
	ppl := people{path: usersFile, log: log}
	st := &groupsStorage{Storage: storage.NewStorage(ppl), people: ppl}
	router := exampleop.SetupServer(issuer, st, log, false)
	srv := &http.Server{Handler: router, ReadHeaderTimeout: 10 * time.Second,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}}
	fmt.Println("issuer", issuer)
	return srv.ServeTLS(ln, "", "")
}

// makeCert makes a CA (written to dir/ca.pem) and a certificate it signs
// for 127.0.0.1 and localhost.
func makeCert(dir string) (tls.Certificate, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "oidcprovider test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return tls.Certificate{}, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return tls.Certificate{}, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), DNSNames: []string{"localhost"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return tls.Certificate{}, err
	}
	if err := os.WriteFile(filepath.Join(dir, "ca.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o644); err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der, caDER}, PrivateKey: key}, nil
}
