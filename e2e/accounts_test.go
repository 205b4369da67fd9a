package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/patchbay/patchbay/internal/apiv1"
	"github.com/pquerna/otp/totp"
)

// Accounts end to end: an admin creates users; a user logs in with a
// password through the real CLI, works, enrols TOTP, logs in with a code
// that then works no second time, uses a recovery code once; guesses
// against the user name from new addresses are throttled while the user's
// own address still works; the console's password form logs in; and
// disabling the user makes their next request fail with 401.
func TestAccounts(t *testing.T) {
	r := StartRelay(t)
	admin := r.Login(r.AdminToken())
	ag := r.Enroll(admin.Token("--uses", "1")).Start()
	waitFor(t, 20*time.Second, "agent online", func() bool { return admin.Online(ag.ID) })

	pw := strings.SplitN(admin.Run("users", "create", "Dana", "--role", "technician"), "\n", 2)[0]
	if len(pw) != 20 {
		t.Fatalf("users create printed %q, want the generated password on the first line", pw)
	}
	dana := &CLI{t: t, env: []string{"PATCHBAY_CONFIG=" + filepath.Join(t.TempDir(), "dana.json")}}
	loginArgs := []string{"login", "--server", r.URL, "--ca-fingerprint", r.FP, "--user", "dana", "--password-stdin"}

	t.Run("password login, then work", func(t *testing.T) {
		out, errOut, err := tryIn(dana.env, pw+"\n", loginArgs...)
		if err != nil || !strings.Contains(out, "as dana (technician)") || !strings.Contains(errOut, "Session valid until") {
			t.Fatalf("login: %v\n%s\n%s", err, out, errOut)
		}
		agents := dana.Agents("")
		if len(agents) != 1 || agents[0].ID != ag.ID {
			t.Fatalf("dana lists %+v", agents)
		}
		var who apiv1.Whoami
		if err := json.Unmarshal([]byte(dana.Run("whoami", "-o", "json")), &who); err != nil || who.User != "dana" || who.Role != "technician" {
			t.Errorf("whoami: %+v %v", who, err)
		}
		_, errOut, err = tryIn(dana.env, "not the password\n", loginArgs...)
		if err == nil || !strings.Contains(errOut, "user name, password or code wrong") {
			t.Errorf("wrong password: %v %s", err, errOut)
		}
	})

	var secret string
	var recovery []string
	t.Run("enrol TOTP", func(t *testing.T) {
		secret, recovery = enrolTOTP(t, dana)
		if len(recovery) != 10 {
			t.Fatalf("recovery codes: %q", recovery)
		}
		var users []apiv1.User
		json.Unmarshal([]byte(admin.Run("users", "list", "-o", "json")), &users)
		if len(users) != 1 || users[0].TOTP != "on" || users[0].RecoveryCodesLeft != 10 {
			t.Errorf("users list: %+v", users)
		}
	})

	t.Run("login with a code, which works once", func(t *testing.T) {
		if _, errOut, err := tryIn(dana.env, pw+"\n", loginArgs...); err == nil || !strings.Contains(errOut, "code") {
			t.Errorf("login without a code: %v %s", err, errOut)
		}
		// The next period's code: the enrolment's own period is used up.
		code, _ := totp.GenerateCode(secret, time.Now().Add(30*time.Second))
		if out, errOut, err := tryIn(dana.env, pw+"\n"+code+"\n", loginArgs...); err != nil {
			t.Fatalf("login with a code: %v\n%s\n%s", err, out, errOut)
		}
		if _, errOut, err := tryIn(dana.env, pw+"\n"+code+"\n", loginArgs...); err == nil || !strings.Contains(errOut, "user name, password or code wrong") {
			t.Errorf("the same code again: %v %s", err, errOut)
		}
		if _, errOut, err := tryIn(dana.env, pw+"\n"+recovery[0]+"\n", loginArgs...); err != nil || !strings.Contains(errOut, "9 left") {
			t.Errorf("recovery code: %v %s", err, errOut)
		}
		if _, _, err := tryIn(dana.env, pw+"\n"+recovery[0]+"\n", loginArgs...); err == nil {
			t.Error("a recovery code worked twice")
		}
		if len(dana.Agents("")) != 1 {
			t.Error("dana cannot list agents after the code login")
		}
	})

	t.Run("guesses from new addresses throttle the user name, not the user's own address", func(t *testing.T) {
		var last int
		var body string
		for i := 2; i < 30; i++ {
			if last, body = loginFrom(t, r, fmt.Sprintf("127.0.0.%d", i), "dana", "guess "+fmt.Sprint(i)); last == 429 {
				t.Logf("throttled after %d guesses from %d addresses: %s", i-2, i-2, body)
				break
			}
			if last != 401 {
				t.Fatalf("guess %d: %d %s", i, last, body)
			}
		}
		if last != 429 || !strings.Contains(body, "user dana") {
			t.Fatalf("no 429 naming the user after the burst: %d %s", last, body)
		}
		// dana's own address (127.0.0.1, where she logged in) is not locked
		// out. (A recovery code: a fresh TOTP code may have to wait for the
		// next 30-second period.)
		if out, errOut, err := tryIn(dana.env, pw+"\n"+recovery[1]+"\n", loginArgs...); err != nil {
			t.Fatalf("dana from her own address: %v\n%s\n%s", err, out, errOut)
		}
	})

	t.Run("the console's password form", func(t *testing.T) {
		erinPW := "erin's long passphrase"
		if _, errOut, err := tryIn(admin.env, erinPW+"\n", "users", "create", "erin", "--role", "viewer", "--password-stdin"); err != nil {
			t.Fatalf("create erin: %v %s", err, errOut)
		}
		p := newPage(t, startBrowser(t))
		p.run(t, chromedp.Navigate(r.URL+"/"))
		p.waitJS(t, "the password form", `document.querySelector('#login-user') !== null`)
		p.run(t, chromedp.SendKeys("#login-user", "erin"), chromedp.SendKeys("#login-password", "wrong password!"),
			chromedp.Click(`#login-password-form button[type="submit"]`))
		p.waitJS(t, "the refusal", `!document.querySelector('#login-error').hidden`)
		if msg := p.str(t, `document.querySelector('#login-error').textContent`); !strings.Contains(msg, "password or code wrong") {
			t.Errorf("refusal shown: %q", msg)
		}
		p.bool(t, `(() => { document.querySelector('#login-password').value = ''; return true })()`)
		p.run(t, chromedp.SendKeys("#login-password", erinPW),
			chromedp.Click(`#login-password-form button[type="submit"]`))
		p.waitJS(t, "the fleet", `document.querySelectorAll('#agents tr[data-id]').length === 1`)
		if got := p.str(t, `document.querySelector('#who-role').textContent`); got != "viewer" {
			t.Errorf("role shown = %q, want viewer", got)
		}
		p.screenshot(t, "password-login")
		if out := admin.Run("audit", "list"); !strings.Contains(out, "login.password") || !strings.Contains(out, "console.login") {
			t.Errorf("audit lacks login.password and console.login:\n%s", out)
		}
	})

	t.Run("disabling the user makes the next request 401", func(t *testing.T) {
		admin.Run("users", "disable", "dana")
		_, errOut, err := dana.Try("agents", "list")
		if err == nil || !strings.Contains(errOut, "unknown, expired or revoked") {
			t.Fatalf("dana after disable: %v %s", err, errOut)
		}
		if code, body := loginFrom(t, r, "127.0.0.1", "dana", pw); code != 401 {
			t.Errorf("a disabled user logs in: %d %s", code, body)
		}
		out := admin.Run("audit", "list")
		for _, want := range []string{"user.create", "user.totp.enrol", "user.totp.confirm", "login.password", "user.disable"} {
			if !strings.Contains(out, want) {
				t.Errorf("audit lacks %s", want)
			}
		}
	})
}

// tryIn runs patchbay with stdin and returns stdout, stderr and the error.
func tryIn(env []string, stdin string, args ...string) (string, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin("patchbay"), args...)
	cmd.Env = append(cmd.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	return out.String(), errOut.String(), err
}

// enrolTOTP runs patchbay account totp enrol as a person would: reads the
// secret it prints, answers with the authenticator's code, and returns the
// secret and the recovery codes.
func enrolTOTP(t *testing.T, c *CLI) (string, []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin("patchbay"), "account", "totp", "enrol")
	cmd.Env = append(cmd.Environ(), c.env...)
	var errOut bytes.Buffer
	cmd.Stderr = &errOut
	in, _ := cmd.StdinPipe()
	outPipe, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	out := bufio.NewReader(outPipe)
	var secret, uri string
	for uri == "" {
		line, err := out.ReadString('\n')
		if err != nil {
			cmd.Wait()
			t.Fatalf("enrol: %v before the URI\nstderr: %s", err, errOut.String())
		}
		if s, ok := strings.CutPrefix(line, "Secret: "); ok {
			secret = strings.TrimSpace(s)
		}
		if s, ok := strings.CutPrefix(line, "URI:"); ok {
			uri = strings.TrimSpace(s)
		}
	}
	if secret == "" || !strings.HasPrefix(uri, "otpauth://totp/") || !strings.Contains(uri, "secret="+secret) {
		t.Fatalf("enrol printed secret %q, URI %q", secret, uri)
	}
	code, err := totp.GenerateCode(secret, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(in, code+"\n")
	in.Close()
	rest, _ := io.ReadAll(out)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("enrol: %v\nstdout: %s\nstderr: %s", err, rest, errOut.String())
	}
	var codes []string
	for _, l := range strings.Split(string(rest), "\n") {
		if c, ok := strings.CutPrefix(l, "  "); ok {
			codes = append(codes, strings.TrimSpace(c))
		}
	}
	return secret, codes
}

// loginFrom posts a password login from the local address ip (any
// 127.0.0.0/8 address reaches the relay on loopback), as a new machine
// would, and returns the status and body.
func loginFrom(t *testing.T, r *Relay, ip, user, pw string) (int, string) {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 10 * time.Second}
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DialContext: d.DialContext,
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} // the body carries no secret worth pinning for
	defer hc.CloseIdleConnections()
	body, _ := json.Marshal(apiv1.PasswordLoginRequest{User: user, Password: pw})
	resp, err := hc.Post(r.URL+"/v1/login/password", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("login from %s: %v", ip, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
