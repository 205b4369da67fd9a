package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"golang.org/x/crypto/ssh"

	"github.com/patchbay/patchbay/internal/apiv1"
)

// consoleLiveJob checks that the Job screen follows a job over its event
// stream: progress and per-agent results change while it runs, without
// polling. Two runs of 1.5 s, one at a time, on the paris agents.
func consoleLiveJob(t *testing.T, p *page) {
	t.Run("job progress and results are pushed live", func(t *testing.T) {
		status, body := p.post(t, "/v1/jobs", `{"plugin":"testplugin","target":"site=paris","params":{"sleep":"1500ms"},"concurrency":1,"reason":"live progress"}`)
		if status != http.StatusCreated {
			t.Fatalf("create job: %d %s", status, body)
		}
		var j apiv1.Job
		if err := json.Unmarshal([]byte(body), &j); err != nil || j.Total != 2 {
			t.Fatalf("created job %s: %v", body, err)
		}
		p.bool(t, `(performance.clearResourceTimings(), performance.setResourceTimingBufferSize(1000), true)`)
		p.goTo(t, "#/job/"+j.ID, `document.querySelector('#job-live')?.dataset.state === 'open'`)
		p.waitJS(t, "one run done, one not, the job running", `document.querySelector('#job-bar').value === 1 &&
			document.querySelector('#job-screen').dataset.final === 'false' &&
			document.querySelectorAll('#results tr[data-agent]').length === 2 &&
			document.querySelectorAll('#results tr[data-state="succeeded"]').length === 1 &&
			document.querySelector('#job-counts [data-state="succeeded"]')?.textContent === 'succeeded 1'`)
		if got := p.str(t, `document.querySelector('#job-counts').textContent`); strings.Contains(got, "null") {
			t.Errorf("counts = %q", got)
		}
		p.screenshot(t, "job-live")
		p.waitJS(t, "the job done", `document.querySelector('#job-screen').dataset.final === 'true' &&
			document.querySelectorAll('#results tr[data-state="succeeded"]').length === 2`)
		if got := p.str(t, `document.querySelector('#job-live').dataset.state`); got != "ended" {
			t.Errorf("job stream state = %q, want ended (the end came over the stream)", got)
		}
		polls := p.str(t, `performance.getEntriesByType('resource').map(e => e.name).filter(n => n.includes('results=false')).join(' ')`)
		if polls != "" {
			t.Errorf("the job screen polled while the stream worked: %s", polls)
		}
		if got := p.str(t, `document.querySelector('#job-bar').value + '/' + document.querySelector('#job-bar').max`); got != "2/2" {
			t.Errorf("progress bar = %s, want 2/2", got)
		}
	})
}

// consolePlayback records a terminal session (SSH with a PTY over a
// console websocket) and plays it in the Sessions screen; then the same
// recording cut off mid-event, then with its file gone.
func consolePlayback(t *testing.T, r *Relay, p *page, agentID string) {
	t.Run("a recording plays in the Sessions screen", func(t *testing.T) {
		c := newConsoleClient(t, r)
		token := r.AdminToken()
		s := c.login(token)
		ws := c.openSession(s, agentID, "INC-7 playback", "shell")
		client := c.sshClient(s, ws, agentID)
		sess, err := client.NewSession()
		if err != nil {
			t.Fatal(err)
		}
		in, _ := sess.StdinPipe()
		if err := sess.RequestPty("xterm", 24, 80, ssh.TerminalModes{}); err != nil {
			t.Fatal(err)
		}
		if err := sess.Shell(); err != nil {
			t.Fatal(err)
		}
		if _, err := in.Write([]byte("echo play-marker-$((6*7))\nexit\n")); err != nil {
			t.Fatal(err)
		}
		sess.Wait()
		client.Close()
		id := ""
		waitFor(t, 20*time.Second, "the recording stored", func() bool {
			var list []apiv1.Session
			c.getJSON(token, "/v1/sessions?limit=5", &list)
			for _, x := range list {
				if x.Reason == "INC-7 playback" && x.State == "ended" && x.RecordingSize > 0 {
					id = x.ID
					return true
				}
			}
			return false
		})
		play := fmt.Sprintf(`button.play[data-play="%s"]`, id)
		p.goTo(t, "#/sessions", `document.querySelector('#sessions')?.dataset.loaded === 'true' && document.querySelector('`+play+`') !== null`)
		p.bool(t, `(window.cspViolations = [], document.addEventListener('securitypolicyviolation',
			(e) => window.cspViolations.push(e.effectiveDirective + ' ' + e.blockedURI)), true)`)
		p.run(t, chromedp.Click(play))
		p.waitJS(t, "the player showing the session's output", `['playing', 'ended'].includes(document.querySelector('#player-box').dataset.state) &&
			document.querySelector('#player').innerText.includes('play-marker-42')`)
		p.waitJS(t, "the recording played to its end", `document.querySelector('#player-box').dataset.state === 'ended'`)
		if v := p.str(t, `window.cspViolations.join('; ')`); v != "" {
			t.Errorf("the player broke the Content-Security-Policy: %s", v)
		}
		p.screenshot(t, "recording")

		// Cut off in the middle of an event written after the output: it
		// plays up to there, and says so. (Cutting the file's own last event
		// could cut the marker itself when the shell wrote it and its exit in
		// one read.)
		path := filepath.Join(r.Dir, "recordings", id+".cast")
		cast, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasSuffix(cast, []byte("\n")) {
			t.Fatalf("recording does not end with a whole line: %q", cast[max(0, len(cast)-40):])
		}
		cut := append(cast, []byte(`[99.5, "o", "written when the agent st`)...)
		if err := os.WriteFile(path, cut, 0o600); err != nil {
			t.Fatal(err)
		}
		p.run(t, chromedp.Click(play))
		p.waitJS(t, "the partial recording playing, with a message", `document.querySelector('#player-box').dataset.partial === 'true' &&
			['playing', 'ended'].includes(document.querySelector('#player-box').dataset.state) &&
			document.querySelector('#player-message').textContent.includes('partial event') &&
			document.querySelector('#player').innerText.includes('play-marker-42')`)
		p.screenshot(t, "recording-partial")

		// Gone: a message, no player.
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
		p.run(t, chromedp.Click(play))
		p.waitJS(t, "the missing recording's message", `document.querySelector('#player-box').dataset.state === 'error' &&
			document.querySelector('#player-message').textContent.includes('no recording')`)
		if p.bool(t, `document.querySelector('#player .ap-player') !== null`) {
			t.Error("a player is shown for a missing recording")
		}
		p.run(t, chromedp.Click("#player-close"))
		if !strings.Contains(p.str(t, `document.querySelector('#player-panel').hidden ? 'hidden' : 'shown'`), "hidden") {
			t.Error("Close left the player shown")
		}
	})
}
