package e2e

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/patchbay/patchbay/internal/apiv1"
)

// mailbox is a real SMTP server (emersion/go-smtp) on loopback that keeps
// the messages it accepts.
type mailbox struct {
	got chan receivedMail
}

type receivedMail struct {
	from string
	to   []string
	data []byte
}

func (m *mailbox) NewSession(*smtp.Conn) (smtp.Session, error) { return &mailSession{box: m}, nil }

type mailSession struct {
	box *mailbox
	m   receivedMail
}

func (s *mailSession) Mail(from string, _ *smtp.MailOptions) error { s.m.from = from; return nil }
func (s *mailSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.m.to = append(s.m.to, to)
	return nil
}
func (s *mailSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	s.m.data = b
	s.box.got <- s.m
	return err
}
func (s *mailSession) Reset()        {}
func (s *mailSession) Logout() error { return nil }

// startMailbox serves SMTP on addr until the test ends.
func startMailbox(t *testing.T, addr string) *mailbox {
	t.Helper()
	box := &mailbox{got: make(chan receivedMail, 64)}
	srv := smtp.NewServer(box)
	srv.Domain = "localhost"
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close(); wg.Wait() })
	return box
}

// mailParts splits a multipart mail into its text body and its one
// attachment (file name and bytes).
func mailParts(t *testing.T, raw []byte) (subject, text, file string, att []byte) {
	t.Helper()
	msg, err := mail.ReadMessage(strings.NewReader(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/mixed" {
		t.Fatalf("content type %q: %v", msg.Header.Get("Content-Type"), err)
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		p, err := mr.NextPart() // decodes quoted-printable only: base64 below
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(p)
		if err != nil {
			t.Fatal(err)
		}
		if p.Header.Get("Content-Transfer-Encoding") == "base64" {
			if b, err = decodeBase64Lines(b); err != nil {
				t.Fatal(err)
			}
		}
		if p.FileName() != "" {
			file, att = p.FileName(), b
		} else {
			text = string(b)
		}
	}
	dec := new(mime.WordDecoder)
	subject, _ = dec.DecodeHeader(msg.Header.Get("Subject"))
	return subject, text, file, att
}

func (c *CLI) reportSchedules(t *testing.T) []apiv1.ReportSchedule {
	t.Helper()
	var l []apiv1.ReportSchedule
	if err := json.Unmarshal([]byte(c.Run("reports", "schedule", "list", "-o", "json")), &l); err != nil {
		t.Fatal(err)
	}
	return l
}

// A report schedule fires, its report is mailed through an SMTP alert
// route with the figures of its period attached as CSV; the SMTP server
// is down at first, so the list shows the failure, and the mail arrives
// once the server is up (retried with backoff). Everything is audited.
func TestReportMailedOnSchedule(t *testing.T) {
	t.Parallel() // independent: its own relays, data and agents
	r := StartRelay(t)
	cli := r.Login(r.AdminToken())
	// Figures to find in the report: two incidents opened, one resolved.
	var ids []string
	for _, title := range []string{"printer on fire", "vpn down"} {
		var inc apiv1.Incident
		if err := json.Unmarshal([]byte(cli.Run("incidents", "create", "--title", title, "--site", "default", "-o", "json")), &inc); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, inc.ID)
	}
	cli.Run("incidents", "resolve", ids[0], "--resolution", "put it out")

	smtpAddr := freePort(t) // nothing listens there yet
	cli.Run("alert-routes", "create", "--site", "all", "--min-severity", "critical", "--smtp", "smtp://"+smtpAddr,
		"--from", "patchbay@example.com", "--to", "oncall@example.com")
	// Bad input is refused with what to write, and nothing is created.
	for _, bad := range [][]string{
		{"--period", "forever"}, {"--format", "pdf"}, {"--to", "not an address"}, {"--route", "nosuchroute"}, {"--site", "nosuch"},
	} {
		args := append([]string{"reports", "schedule", "create", "bad", "--cron", "0 7 * * 1"}, bad...)
		if _, errOut, err := cli.Try(args...); err == nil || !strings.Contains(errOut, strings.TrimPrefix(bad[0], "--")) {
			t.Fatalf("%v accepted: %v %s", bad, err, errOut)
		}
	}
	if l := cli.reportSchedules(t); len(l) != 0 {
		t.Fatalf("bad requests created %d schedules", len(l))
	}
	out := cli.Run("reports", "schedule", "create", "--name", "often", "--cron", "*/2 * * * * *", "--tz", "Europe/Berlin",
		"--site", "default", "--period", "1h", "--to", "ops@example.com", "--format", "csv")
	if !strings.Contains(out, "Created report schedule often") {
		t.Fatalf("create: %s", out)
	}
	// The SMTP server is down: the first mail fails and waits for a retry.
	var sc apiv1.ReportSchedule
	waitFor(t, 30*time.Second, "a failed first send", func() bool {
		l := cli.reportSchedules(t)
		sc = l[0]
		return sc.LastSend != nil && sc.LastSend.State == apiv1.MailQueued && sc.LastSend.Error != ""
	})
	if !strings.Contains(sc.LastSend.Error, smtpAddr) {
		t.Fatalf("last send error %q does not name the server", sc.LastSend.Error)
	}
	if table := cli.Run("reports", "schedule", "list"); !strings.Contains(table, "queued after") || !strings.Contains(table, "ops@example.com") {
		t.Fatalf("list:\n%s", table)
	}
	cli.Run("schedules", "pause", "often")
	box := startMailbox(t, smtpAddr)
	var m receivedMail
	select {
	case m = <-box.got:
	case <-time.After(60 * time.Second):
		t.Fatal("no report mail within 60s of the SMTP server coming up")
	}
	if m.from != "patchbay@example.com" || strings.Join(m.to, ",") != "ops@example.com" {
		t.Fatalf("envelope from %s to %v", m.from, m.to)
	}
	subject, text, file, att := mailParts(t, m.data)
	if !strings.HasPrefix(subject, "[patchbay] report often: ") || strings.Contains(subject, "all sites") {
		t.Fatalf("subject %q", subject)
	}
	if !strings.Contains(text, "Incidents: 2 opened, 1 resolved") {
		t.Fatalf("text body:\n%s", text)
	}
	if !strings.HasPrefix(file, "patchbay-report-often-") || !strings.HasSuffix(file, ".csv") {
		t.Fatalf("attachment %q", file)
	}
	csv := string(att)
	for _, want := range []string{"section,item,value\n", "incidents,opened,2\n", "incidents,resolved,1\n", "period,site,"} {
		if !strings.Contains(csv, want) {
			t.Fatalf("attachment lacks %q:\n%s", want, csv)
		}
	}
	waitFor(t, 30*time.Second, "the list to show the mail sent", func() bool {
		for _, s := range cli.reportSchedules(t) {
			if s.Name == "often" && s.LastSend != nil && s.LastSend.State == apiv1.MailSent {
				return true
			}
		}
		return false
	})
	audit := cli.Run("audit", "list", "-o", "json")
	for _, want := range []string{"schedule.create", "report.mail", "schedule often"} {
		if !strings.Contains(audit, want) {
			t.Fatalf("audit log lacks %q", want)
		}
	}
	cli.Run("reports", "schedule", "delete", "often")
	if l := cli.reportSchedules(t); len(l) != 0 {
		t.Fatalf("after delete: %v", l)
	}
	if audit := cli.Run("audit", "list", "-o", "json"); !strings.Contains(audit, "schedule.delete") {
		t.Fatal("delete not audited")
	}
}

// decodeBase64Lines decodes base64 split over CRLF lines.
func decodeBase64Lines(b []byte) ([]byte, error) {
	return base64.StdEncoding.DecodeString(strings.NewReplacer("\r", "", "\n", "").Replace(string(b)))
}
