package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/patchbay/patchbay/internal/apiv1"
)

// consoleStream logs in to the web console with token and follows its
// event stream until the test ends.
func (f *sitesFleet) consoleStream(t *testing.T, token string) *logBuffer {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"method": "token", "secret": token})
	req, _ := http.NewRequest("POST", f.r.URL+"/console/login", bytes.NewReader(body))
	req.Header.Set("Origin", f.r.URL)
	req.Header.Set("Content-Type", "application/json")
	res, err := f.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || len(res.Cookies()) == 0 {
		t.Fatalf("console login: HTTP %d %s", res.StatusCode, b)
	}
	ctx, cancel := context.WithCancel(context.Background())
	req, _ = http.NewRequestWithContext(ctx, "GET", f.r.URL+"/console/events", nil)
	for _, ck := range res.Cookies() {
		req.AddCookie(ck)
	}
	stream := &http.Client{Transport: f.hc.Transport} // no overall timeout: it streams
	res, err = stream.Do(req)
	if err != nil || res.StatusCode != 200 {
		cancel()
		t.Fatalf("console events: %v %v", err, res)
	}
	buf := &logBuffer{}
	done := make(chan struct{})
	go func() {
		io.Copy(buf, res.Body)
		close(done)
	}()
	t.Cleanup(func() {
		cancel()
		res.Body.Close()
		<-done
	})
	return buf
}

// testConsoleEvents: the web console's live presence stream tells each
// side only about its own agents coming and going.
func (f *sitesFleet) testConsoleEvents(t *testing.T) {
	var wall apiv1.APIToken
	decodeInto(t, f.want(t, 201, f.admin, "POST", "/v1/api-tokens", apiv1.APITokenRequest{Role: "viewer", Name: "wall.acme", Sites: []string{"Acme/HQ"}}), &wall)
	acme, globex, admin := f.consoleStream(t, wall.Token), f.consoleStream(t, f.bot.token), f.consoleStream(t, f.admin.token)
	online := func(id string) string { return `{"id":"` + id + `","online":true}` }
	for _, c := range []struct {
		agent  *Agent
		stream *logBuffer
	}{{f.gxAgent, globex}, {f.acmeAgent, acme}} {
		c.agent.proc.kill()
		c.agent.StartWith("--consent-mode", "unattended")
		waitFor(t, 30*time.Second, "the console of its side to see agent "+c.agent.ID+" come back", func() bool {
			return strings.Contains(c.stream.String(), online(c.agent.ID))
		})
	}
	waitFor(t, 10*time.Second, "the admin's console to see both agents come back", func() bool {
		return strings.Contains(admin.String(), online(f.acmeAgent.ID)) && strings.Contains(admin.String(), online(f.gxAgent.ID))
	})
	if strings.Contains(acme.String(), f.gxAgent.ID) {
		t.Errorf("Acme's console was told of Globex's agent:\n%s", acme.String())
	}
	if strings.Contains(globex.String(), f.acmeAgent.ID) {
		t.Errorf("Globex's console was told of Acme's agent:\n%s", globex.String())
	}
}
