package alerts

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	netmail "net/mail"
	"strings"
	"testing"
	"time"

	"github.com/patchbay/patchbay/server/store"
)

// A report mail reaches a real SMTP server over STARTTLS with auth, to the
// mail's recipients (not the route's), as multipart/mixed with the text and
// the attachment intact; a route that is not SMTP is refused for good.
func TestReportMailOverSTARTTLS(t *testing.T) {
	cert, caPEM := testCert(t)
	be := &smtpBackend{user: "relay", pass: "mail-pass", got: make(chan mail, 4)}
	ln := serveSMTP(t, be, cert)
	rt := store.AlertRoute{ID: "r1", Kind: store.RouteSMTP, Target: "smtp://" + ln.Addr().String(), From: "patchbay@example.com",
		To: []string{"oncall@example.com"}, User: be.user, Secret: be.pass, CAPEM: caPEM}
	data := []byte(`{"incidents":{"opened":3}}` + "\n" + strings.Repeat("x", 200))
	body, _ := json.Marshal(ReportMail{Subject: "[patchbay] report weekly: acme/paris, 2026-11-30 to 2026-12-07", Text: "Incidents: 3 opened\nline two",
		To: []string{"ops@example.com", "lead@example.com"}, Time: time.Now(), File: "weekly.json", Type: "application/json", Data: data})
	d := store.Delivery{ID: "d1", Event: store.EventReportMail, Body: string(body)}
	if err := sendReport(context.Background(), rt, d); err != nil {
		t.Fatal(err)
	}
	m := <-be.got
	if !m.tls || m.user != "relay" || strings.Join(m.to, ",") != "ops@example.com,lead@example.com" {
		t.Fatalf("envelope %+v", m)
	}
	msg, err := netmail.ReadMessage(strings.NewReader(m.data))
	if err != nil {
		t.Fatal(err)
	}
	if subj, _ := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject")); subj != "[patchbay] report weekly: acme/paris, 2026-11-30 to 2026-12-07" {
		t.Fatalf("subject %q", subj)
	}
	_, params, _ := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	mr := multipart.NewReader(msg.Body, params["boundary"])
	var parts []string
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(p)
		dec, err := base64.StdEncoding.DecodeString(strings.NewReplacer("\r", "", "\n", "").Replace(string(raw)))
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, p.FileName()+"|"+string(dec))
	}
	if len(parts) != 2 || parts[0] != "|Incidents: 3 opened\r\nline two" || parts[1] != "weekly.json|"+string(data) {
		t.Fatalf("parts %q", parts)
	}
	rt.Kind = store.RouteWebhook
	if err := sendReport(context.Background(), rt, d); err == nil || !strings.Contains(err.Error(), "not smtp") || !errors.Is(err, errPermanent) {
		t.Fatalf("webhook route: %v", err)
	}
}
