package api

import (
	"bytes"
	"container/list"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/patchbay/patchbay/certs"
	"github.com/patchbay/patchbay/internal/apiv1"
	"github.com/patchbay/patchbay/internal/audit"
	"github.com/patchbay/patchbay/internal/testtool"
	"github.com/patchbay/patchbay/plugins/sdk/sdktest"
	"github.com/patchbay/patchbay/server/store"
)

const testPluginPkg = "github.com/patchbay/patchbay/plugins/sdk/testplugin"

// testPluginManifest is what `testplugin manifest` prints (name and version
// matter here; the relay does not run the plugin).
const testPluginManifest = `{"name":"testplugin","version":"1.0.0","description":"misbehaves on request (tests only)",
  "params":[{"name":"mode","type":"string","default":"ok","allowed":["ok","fail"]}]}`

// sshKeygen runs ssh-keygen (testtool.Need: skips or fails where it is not installed).
func sshKeygen(t *testing.T, args ...string) {
	t.Helper()
	keygen := testtool.Need(t, "ssh-keygen", "openssh-client")
	if out, err := exec.Command(keygen, args...).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen %q: %v\n%s", args, err, out)
	}
}

// newSigningKey generates an unencrypted Ed25519 key and returns its path.
func newSigningKey(t *testing.T) string {
	t.Helper()
	key := filepath.Join(t.TempDir(), "signing_key")
	sshKeygen(t, "-q", "-t", "ed25519", "-N", "", "-C", "publisher@example.com", "-f", key)
	return key
}

// sshSign signs file with ssh-keygen in namespace ns and returns the armored signature.
func sshSign(t *testing.T, key, file, ns string) []byte {
	t.Helper()
	os.Remove(file + ".sig")
	sshKeygen(t, "-q", "-Y", "sign", "-n", ns, "-f", key, file)
	sig, err := os.ReadFile(file + ".sig")
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

// copyFile copies src into dir as name, appending extra bytes (a rebuilt
// binary: still a valid executable, other content).
func copyFile(t *testing.T, src, dir, name, extra string) string {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, name)
	if err := os.WriteFile(dst, append(b, extra...), 0o755); err != nil {
		t.Fatal(err)
	}
	return dst
}

type part struct{ name, fileName, content string }

// multipartBody encodes parts as multipart/form-data.
func multipartBody(t *testing.T, parts ...part) (string, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, p := range parts {
		var w io.Writer
		var err error
		if p.fileName != "" {
			w, err = mw.CreateFormFile(p.name, p.fileName)
		} else {
			w, err = mw.CreateFormField(p.name)
		}
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, p.content)
	}
	mw.Close()
	return buf.String(), mw.FormDataContentType()
}

func postUpload(t *testing.T, h http.Handler, path, token string, parts ...part) *httptest.ResponseRecorder {
	t.Helper()
	body, ct := multipartBody(t, parts...)
	req := httptest.NewRequest("POST", path, strings.NewReader(body))
	req.Header.Set("Content-Type", ct)
	req.Header.Set("Authorization", "Bearer "+token)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// text is the error message of an error answer, else the body.
func errText(rec *httptest.ResponseRecorder) string {
	var e apiv1.Error
	if rec.Code >= 400 && json.Unmarshal(rec.Body.Bytes(), &e) == nil {
		return e.Error
	}
	return rec.Body.String()
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// auditActions returns the audit records with action.
func auditActions(t *testing.T, st *store.Store, action string) []audit.Record {
	t.Helper()
	recs, err := st.ListAudit(context.Background(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var out []audit.Record
	for _, r := range recs {
		if r.Action == action {
			out = append(out, r)
		}
	}
	return out
}

func TestPluginPublish(t *testing.T) {
	a, h, tok := testAPI(t)
	ctx := context.Background()
	dir := t.TempDir()
	key := newSigningKey(t)
	bin := copyFile(t, sdktest.Build(t, testPluginPkg), dir, "testplugin", "")
	sig := string(sshSign(t, key, bin, "patchbay-plugin"))
	tampered := copyFile(t, bin, dir, "tampered", "x")
	rebuilt := copyFile(t, bin, dir, "rebuilt", "rebuilt")
	rebuiltSig := string(sshSign(t, key, rebuilt, "patchbay-plugin"))
	wrongNS := string(sshSign(t, key, rebuilt, "file"))
	text := filepath.Join(dir, "notes.txt")
	os.WriteFile(text, []byte("just some text, not a program\n"), 0o644)
	textSig := string(sshSign(t, key, text, "patchbay-plugin"))

	good := []part{{"manifest", "", testPluginManifest}, {"sig", "", sig}, {"file", "testplugin", readFile(t, bin)}}
	with := func(p part) []part {
		out := []part{}
		for _, g := range good {
			if g.name != p.name {
				out = append(out, g)
			}
		}
		if p.content != "-" {
			out = append(out, p)
		}
		return out
	}
	tests := []struct {
		name     string
		role     string
		parts    []part
		status   int
		contains string
	}{
		{"technician may not publish", apiv1.RoleTechnician, good, 403, "needs the admin role"},
		{"no signature", apiv1.RoleAdmin, with(part{"sig", "", "-"}), 400, "sign the file first"},
		{"no manifest", apiv1.RoleAdmin, with(part{"manifest", "", "-"}), 400, "no manifest"},
		{"no file", apiv1.RoleAdmin, with(part{"file", "", "-"}), 400, "no file part"},
		{"unknown part", apiv1.RoleAdmin, append(with(part{content: "-"}), part{"extra", "", "x"}), 400, `unexpected part "extra"`},
		{"file twice", apiv1.RoleAdmin, append(with(part{content: "-"}), part{"file", "x", "x"}), 400, "given twice"},
		{"tampered file", apiv1.RoleAdmin, with(part{"file", "testplugin", readFile(t, tampered)}), 400, "signature does not match the file"},
		{"signature of another file", apiv1.RoleAdmin, with(part{"sig", "", rebuiltSig}), 400, "re-sign it"},
		{"garbage signature", apiv1.RoleAdmin, with(part{"sig", "", "hello"}), 400, "not an armored SSH signature"},
		{"wrong namespace", apiv1.RoleAdmin, []part{{"manifest", "", testPluginManifest}, {"sig", "", wrongNS}, {"file", "p", readFile(t, rebuilt)}}, 400, `namespace "file"`},
		{"not an executable", apiv1.RoleAdmin, []part{{"manifest", "", testPluginManifest}, {"sig", "", textSig}, {"file", "notes.txt", readFile(t, text)}}, 400, "not an executable"},
		{"bad manifest json", apiv1.RoleAdmin, with(part{"manifest", "", "{"}), 400, "manifest: unexpected end"},
		{"invalid manifest", apiv1.RoleAdmin, with(part{"manifest", "", `{"name":"Test Plugin","version":"1.0.0"}`}), 400, `name "Test Plugin"`},
		{"manifest for another os", apiv1.RoleAdmin, with(part{"manifest", "", `{"name":"testplugin","version":"1.0.0","os":["windows"]}`}), 400,
			"built for " + runtime.GOOS + "/" + runtime.GOARCH + " but the manifest of testplugin supports only windows"},
		{"published", apiv1.RoleAdmin, good, 201, `"name": "testplugin"`},
		{"published again: nothing changes", apiv1.RoleAdmin, good, 200, `"version": "1.0.0"`},
		{"same version, other bytes", apiv1.RoleAdmin, []part{{"manifest", "", testPluginManifest}, {"sig", "", rebuiltSig}, {"file", "p", readFile(t, rebuilt)}}, 409,
			"plugin testplugin 1.0.0 for " + runtime.GOOS + "/" + runtime.GOARCH + " is already published with other content"},
		{"same bytes, other version", apiv1.RoleAdmin, with(part{"manifest", "", `{"name":"testplugin","version":"1.0.1"}`}), 409,
			"already published as plugin testplugin 1.0.0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := postUpload(t, h, "/v1/plugins", tok[tt.role], tt.parts...)
			if rec.Code != tt.status || !strings.Contains(errText(rec), tt.contains) {
				t.Fatalf("= %d %s; want %d containing %q", rec.Code, rec.Body, tt.status, tt.contains)
			}
			if tt.status >= 400 && !strings.Contains(rec.Body.String(), `"error"`) {
				t.Errorf("error answer is not {\"error\": ...}: %s", rec.Body)
			}
		})
		if tt.status >= 400 && tt.name != "same version, other bytes" && tt.name != "same bytes, other version" {
			if arts, _ := a.Store.ListArtifacts(ctx, "", ""); len(arts) != 0 {
				t.Fatalf("%s: a refused upload stored %d artifacts", tt.name, len(arts))
			}
		}
	}

	arts, err := a.Store.ListArtifacts(ctx, "", "")
	if err != nil || len(arts) != 1 {
		t.Fatalf("stored %d artifacts, %v; want 1", len(arts), err)
	}
	art := arts[0]
	content, _ := a.Store.ArtifactContent(ctx, art.SHA256)
	if string(content) != readFile(t, bin) || art.Signature != sig || art.OS != runtime.GOOS || art.Arch != runtime.GOARCH {
		t.Errorf("stored %+v", art)
	}
	recs := auditActions(t, a.Store, "plugin.publish")
	if len(recs) != 1 {
		t.Fatalf("%d plugin.publish audit records, want 1 (a republish changes nothing)", len(recs))
	}
	if r := recs[0]; r.Target != "testplugin@1.0.0" || r.Detail["sha256"] != art.SHA256 || r.Detail["os"] != runtime.GOOS ||
		r.Detail["arch"] != runtime.GOARCH || !strings.HasPrefix(r.Detail["signer"], "SHA256:") || !strings.Contains(r.Actor, "admin-user") {
		t.Errorf("audit record %+v", r)
	}

	// Reading the catalog.
	rec := do(h, "GET", "/v1/plugins", tok[apiv1.RoleViewer], "")
	var list []apiv1.Artifact
	if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &list) != nil || len(list) != 1 {
		t.Fatalf("list: %d %s", rec.Code, rec.Body)
	}
	got := list[0]
	if got.SHA256 != art.SHA256 || got.Kind != "plugin" || got.Size != art.Size || got.SignerKeyType != "ssh-ed25519" ||
		got.Signer != art.SignerFingerprint || got.Description == "" || len(got.Params) != 1 || got.Params[0].Name != "mode" ||
		got.PublishedAt.IsZero() || !strings.Contains(got.PublishedBy, "admin-user") {
		t.Errorf("listed %+v", got)
	}
	var raw []map[string]any
	json.Unmarshal(rec.Body.Bytes(), &raw)
	for _, k := range []string{"sha256", "kind", "name", "version", "os", "arch", "size", "description", "params", "signer", "signer_key_type", "published_by", "published_at"} {
		if _, ok := raw[0][k]; !ok {
			t.Errorf("JSON lacks %q", k)
		}
	}
	reads := []struct {
		path     string
		status   int
		contains string
	}{
		{"/v1/plugins?name=testplugin", 200, art.SHA256},
		{"/v1/plugins?name=other", 200, "[]"},
		{"/v1/scripts", 200, "[]"},
		{"/v1/plugins/" + art.SHA256, 200, `"signer_key_type": "ssh-ed25519"`},
		{"/v1/scripts/" + art.SHA256, 404, "it is a plugin"},
		{"/v1/plugins/" + strings.Repeat("0", 64), 404, "no file with sha256"},
		{"/v1/plugins/" + strings.ToUpper(art.SHA256), 400, "64 lower-case hex"},
		{"/v1/plugins/abc", 400, "64 lower-case hex"},
	}
	for _, r := range reads {
		if rec := do(h, "GET", r.path, tok[apiv1.RoleViewer], ""); rec.Code != r.status || !strings.Contains(errText(rec), r.contains) {
			t.Errorf("GET %s = %d %s; want %d containing %q", r.path, rec.Code, rec.Body, r.status, r.contains)
		}
	}
	if rec := do(h, "GET", "/v1/plugins", "", ""); rec.Code != 401 {
		t.Errorf("list without a token: %d", rec.Code)
	}
	if rec := do(h, "POST", "/v1/plugins", tok[apiv1.RoleAdmin], `{"name":"x"}`); rec.Code != 400 || !strings.Contains(rec.Body.String(), "multipart/form-data") {
		t.Errorf("JSON body: %d %s", rec.Code, rec.Body)
	}
}

func TestScriptPublish(t *testing.T) {
	a, h, tok := testAPI(t)
	ctx := context.Background()
	dir := t.TempDir()
	key := newSigningKey(t)
	write := func(name, content string) (string, string) {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return content, string(sshSign(t, key, p, "patchbay-plugin"))
	}
	headed, headedSig := write("renew.sh", `#!/bin/sh
# patchbay:begin
# name: renew-dhcp
# version: 1.2.0
# description: Renew the DHCP lease of one interface
# os: linux, darwin
# param: interface string default=eth0 -- the interface to renew
# patchbay:end
echo renewing "$PATCHBAY_PARAM_INTERFACE"
`)
	bare, bareSig := write("flush-dns.sh", "#!/bin/sh\nresolvectl flush-caches\n")
	bare2, bare2Sig := write("flush-dns.sh", "#!/bin/sh\nresolvectl flush-caches && echo done\n")
	broken, brokenSig := write("broken.sh", "#!/bin/sh\n# patchbay:begin\n# name: broken\n# patchbay:end\n")
	big, bigSig := write("big.sh", "#!/bin/sh\n"+strings.Repeat("# padding\n", apiv1.MaxScriptSize/10))

	type want struct {
		status                  int
		contains, name, version string
	}
	tests := []struct {
		name  string
		role  string
		parts []part
		want  want
	}{
		{"technician may not publish", apiv1.RoleTechnician, []part{{"sig", "", headedSig}, {"file", "renew.sh", headed}}, want{403, "admin role", "", ""}},
		{"with a header", apiv1.RoleAdmin, []part{{"sig", "", headedSig}, {"file", "renew.sh", headed}}, want{201, `"os": "darwin,linux"`, "renew-dhcp", "1.2.0"}},
		{"again", apiv1.RoleAdmin, []part{{"sig", "", headedSig}, {"file", "renew.sh", headed}}, want{200, `"interface"`, "renew-dhcp", "1.2.0"}},
		{"without a header", apiv1.RoleAdmin, []part{{"file", `C:\scripts\flush-dns.sh`, bare}, {"sig", "", bareSig}}, want{201, `"free_params": true`, "flush-dns", "0.0.0+"}},
		{"edited without a header: a new version", apiv1.RoleAdmin, []part{{"file", "flush-dns.sh", bare2}, {"sig", "", bare2Sig}}, want{201, `"free_params": true`, "flush-dns", "0.0.0+"}},
		{"tampered", apiv1.RoleAdmin, []part{{"file", "flush-dns.sh", bare + "rm -rf /\n"}, {"sig", "", bareSig}}, want{400, "signature does not match the file", "", ""}},
		{"broken header", apiv1.RoleAdmin, []part{{"file", "broken.sh", broken}, {"sig", "", brokenSig}}, want{400, "script broken.sh: line 2: the header has no description: line", "", ""}},
		{"no file name", apiv1.RoleAdmin, []part{{"file", "", bare}, {"sig", "", bareSig}}, want{400, "no file name", "", ""}},
		{"too big", apiv1.RoleAdmin, []part{{"sig", "", bigSig}, {"file", "big.sh", big}}, want{413, "over 1 MiB", "", ""}},
		{"a manifest part is not for scripts", apiv1.RoleAdmin, []part{{"manifest", "", "{}"}, {"file", "renew.sh", headed}, {"sig", "", headedSig}}, want{400, `unexpected part "manifest"`, "", ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := postUpload(t, h, "/v1/scripts", tok[tt.role], tt.parts...)
			if rec.Code != tt.want.status || !strings.Contains(errText(rec), tt.want.contains) {
				t.Fatalf("= %d %s; want %d containing %q", rec.Code, rec.Body, tt.want.status, tt.want.contains)
			}
			if tt.want.status >= 300 {
				return
			}
			var art apiv1.Artifact
			if err := json.Unmarshal(rec.Body.Bytes(), &art); err != nil {
				t.Fatal(err)
			}
			if art.Kind != "script" || art.Name != tt.want.name || !strings.HasPrefix(art.Version, tt.want.version) || art.Arch != "" {
				t.Errorf("artifact %+v", art)
			}
			if strings.HasPrefix(art.Version, "0.0.0+") && art.Version != "0.0.0+"+art.SHA256[:12] {
				t.Errorf("version %q: want 0.0.0+ and the first 12 hex digits of %s", art.Version, art.SHA256)
			}
		})
	}
	scripts, err := a.Store.ListArtifacts(ctx, store.KindScript, "flush-dns")
	if err != nil || len(scripts) != 2 {
		t.Fatalf("flush-dns versions: %d, %v", len(scripts), err)
	}
	if content, _ := a.Store.ArtifactContent(ctx, scripts[0].SHA256); string(content) != bare2 {
		t.Errorf("newest flush-dns is not the last published: %q", content)
	}
	if recs := auditActions(t, a.Store, "script.publish"); len(recs) != 3 || recs[0].Target != "renew-dhcp@1.2.0" || recs[0].Detail["os"] != "darwin,linux" {
		t.Errorf("script.publish audit records: %+v", recs)
	}
	rec := do(h, "GET", "/v1/scripts?name=renew-dhcp", tok[apiv1.RoleViewer], "")
	var list []apiv1.Artifact
	_ = json.Unmarshal(rec.Body.Bytes(), &list)
	if len(list) != 1 || list[0].FreeParams || len(list[0].Params) != 1 || list[0].Params[0].Default != "eth0" {
		t.Errorf("scripts list: %s", rec.Body)
	}
}

// agentClient enrolls an agent through the API and returns an HTTPS client
// presenting its certificate, and its ID.
func agentClient(t *testing.T, h http.Handler, tok map[string]string, ca *certs.CA) (*http.Client, string) {
	t.Helper()
	rec := do(h, "POST", "/v1/enroll-tokens", tok[apiv1.RoleAdmin], `{}`)
	var et apiv1.EnrollToken
	json.Unmarshal(rec.Body.Bytes(), &et)
	key, err := certs.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	csr, _ := certs.CreateCSR(key, "agent")
	body, _ := json.Marshal(apiv1.EnrollRequest{Token: et.Token, CSR: csr, Hostname: "pc-1"})
	rec = do(h, "POST", "/v1/enroll", "", string(body))
	var er apiv1.EnrollResponse
	if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &er) != nil {
		t.Fatalf("enroll: %d %s", rec.Code, rec.Body)
	}
	keyPEM, err := certs.MarshalKeyPEM(key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair([]byte(er.Certificate), keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return tlsClient(ca, &cert), er.AgentID
}

func tlsClient(ca *certs.CA, cert *tls.Certificate) *http.Client {
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	cfg := &tls.Config{RootCAs: pool}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
}

func TestAgentDownload(t *testing.T) {
	a, h, tok := testAPI(t)
	ctx := context.Background()
	dir := t.TempDir()
	cert, err := certs.LoadOrCreateServerCert(dir, a.CA, []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = a.CA.ServerTLSConfig(cert)
	srv.StartTLS()
	defer srv.Close()

	content := []byte("\x7fELF pretend plugin \x00\xff")
	art := store.Artifact{Kind: store.KindPlugin, Name: "x", Version: "1.0.0", OS: "linux", Arch: "amd64",
		Signature: "-----BEGIN SSH SIGNATURE-----\nabc\n-----END SSH SIGNATURE-----\n", SignerFingerprint: "SHA256:x", SignerKeyType: "ssh-ed25519"}
	art.SHA256 = HashSecret(string(content)) // hex SHA-256
	if _, err := a.Store.PutArtifact(ctx, art, content); err != nil {
		t.Fatal(err)
	}
	agent, agentID := agentClient(t, h, tok, a.CA)
	foreignCA, err := certs.LoadOrCreateCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	foreignKey, _ := certs.NewKey()
	foreignCSR, _ := certs.CreateCSR(foreignKey, "x")
	foreignDER, err := foreignCA.SignAgentCSR(foreignCSR, agentID, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	foreignKeyPEM, _ := certs.MarshalKeyPEM(foreignKey)
	foreignCert, err := tls.X509KeyPair(certs.CertPEM(foreignDER), foreignKeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	foreign := tlsClient(a.CA, &foreignCert)
	anonymous := tlsClient(a.CA, nil)

	get := func(c *http.Client, path string, header ...string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	file := "/v1/agent/artifacts/" + art.SHA256
	tests := []struct {
		name     string
		client   *http.Client
		path     string
		header   []string
		status   int
		contains string
	}{
		{"no client certificate", anonymous, file, nil, 401, "enroll the agent first"},
		{"a bearer token is not enough", anonymous, file, []string{"Authorization", "Bearer " + tok[apiv1.RoleAdmin]}, 401, "no client certificate"},
		{"certificate of another CA", foreign, file, nil, 401, "no client certificate"},
		{"content", agent, file, nil, 200, string(content)},
		{"range", agent, file, []string{"Range", "bytes=1-3"}, 206, "ELF"},
		{"signature", agent, file + "/sig", nil, 200, art.Signature},
		{"unknown", agent, "/v1/agent/artifacts/" + strings.Repeat("a", 64), nil, 404, "no file with sha256"},
		{"not a sha256", agent, "/v1/agent/artifacts/" + strings.ToUpper(art.SHA256) + "/sig", nil, 400, "64 lower-case hex"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := get(tt.client, tt.path, tt.header...)
			if resp.StatusCode != tt.status || !strings.Contains(body, tt.contains) {
				t.Fatalf("= %d %q; want %d containing %q", resp.StatusCode, body, tt.status, tt.contains)
			}
			if tt.name == "content" {
				if ct, cl := resp.Header.Get("Content-Type"), resp.Header.Get("Content-Length"); ct != "application/octet-stream" || cl != strconv.Itoa(len(content)) || body != string(content) {
					t.Errorf("Content-Type %q, Content-Length %q, body %q", ct, cl, body)
				}
			}
		})
	}

	if rec := do(h, "POST", "/v1/agents/"+agentID+"/revoke", tok[apiv1.RoleAdmin], ""); rec.Code != 200 {
		t.Fatalf("revoke: %d %s", rec.Code, rec.Body)
	}
	for _, p := range []string{file, file + "/sig"} {
		if resp, body := get(agent, p); resp.StatusCode != 403 || !strings.Contains(body, "revoked") {
			t.Errorf("revoked agent GET %s = %d %s", p, resp.StatusCode, body)
		}
	}
}

// executablePlatform reads GOOS/GOARCH from real executables of every
// platform plugins are built for, and refuses what is not one.
func TestExecutablePlatform(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-compiles a program for several platforms")
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "main.go")
	os.WriteFile(src, []byte("package main\n\nfunc main() {}\n"), 0o644)
	for _, p := range []struct{ goos, goarch string }{
		{"linux", "amd64"}, {"linux", "arm64"}, {"linux", "arm"}, {"linux", "386"}, {"freebsd", "amd64"},
		{"windows", "amd64"}, {"windows", "arm64"}, {"darwin", "amd64"}, {"darwin", "arm64"},
	} {
		t.Run(p.goos+"/"+p.goarch, func(t *testing.T) {
			t.Parallel()
			out := filepath.Join(dir, p.goos+"-"+p.goarch)
			cmd := exec.Command("go", "build", "-o", out, src)
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), "GOOS="+p.goos, "GOARCH="+p.goarch, "CGO_ENABLED=0", "GOFLAGS=")
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("go build: %v\n%s", err, b)
			}
			f, err := os.Open(out)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			goos, goarch, err := executablePlatform(f)
			if err != nil || goos != p.goos || goarch != p.goarch {
				t.Errorf("= %s/%s, %v", goos, goarch, err)
			}
		})
	}
	for _, bad := range []string{"", "MZ", "#!/bin/sh\necho\n", "\x7fELF garbage that is not a header", "\xca\xfe\xba\xbe\x00\x00\x00\x05 java"} {
		if goos, goarch, err := executablePlatform(strings.NewReader(bad)); err == nil {
			t.Errorf("%q accepted as %s/%s", bad, goos, goarch)
		}
	}
}

func TestBlobCache(t *testing.T) {
	c := &blobCache{max: 100, entries: map[string]*blobEntry{}, lru: list.New()}
	ctx := context.Background()
	var loads atomic.Int32
	release := make(chan struct{})
	slow := func() ([]byte, error) {
		loads.Add(1)
		<-release
		return bytes.Repeat([]byte("a"), 40), nil
	}
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if b, err := c.get(ctx, "a", slow); err != nil || len(b) != 40 {
				t.Errorf("get = %d bytes, %v", len(b), err)
			}
		}()
	}
	for c.lenEntries() == 0 {
		runtime.Gosched()
	}
	close(release)
	wg.Wait()
	if n := loads.Load(); n != 1 {
		t.Errorf("%d loads for 20 concurrent gets, want 1", n)
	}

	fail := func() ([]byte, error) { loads.Add(1); return nil, os.ErrNotExist }
	for range 2 {
		if _, err := c.get(ctx, "bad", fail); err != os.ErrNotExist {
			t.Errorf("failed load: %v", err)
		}
	}
	if n := loads.Load(); n != 3 {
		t.Errorf("a failed load was cached (%d loads)", n)
	}
	load := func(n int) func() ([]byte, error) {
		return func() ([]byte, error) { loads.Add(1); return make([]byte, n), nil }
	}
	c.get(ctx, "b", load(40)) // a, b: 80 bytes
	c.get(ctx, "a", load(40)) // a is now the most recent
	c.get(ctx, "c", load(40)) // over 100: b, the least recent, goes
	c.get(ctx, "big", load(60))
	c.mu.Lock()
	_, hasA := c.entries["a"]
	_, hasB := c.entries["b"]
	_, hasBig := c.entries["big"]
	size := c.size
	c.mu.Unlock()
	if !hasA || hasB || hasBig || size != 80 {
		t.Errorf("after eviction: a %v, b %v, big %v, size %d; want a kept, b evicted, big never cached, 80 bytes", hasA, hasB, hasBig, size)
	}
}

func (c *blobCache) lenEntries() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}
