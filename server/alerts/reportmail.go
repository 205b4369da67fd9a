package alerts

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"mime"
	"mime/multipart"
	"net/textproto"
	"strings"
	"time"

	"github.com/patchbay/patchbay/server/store"
)

// ReportMail is the outbox body of a mailed report (store.EventReportMail):
// the relay that fired the report schedule renders it once, and whichever
// relay delivers it sends exactly this, through the SMTP server of the
// route the delivery names.
type ReportMail struct {
	Subject string    `json:"subject"`
	Text    string    `json:"text"`           // the plain-text body
	To      []string  `json:"to,omitempty"`   // recipients ("": the route's)
	Time    time.Time `json:"time"`           // the Date header
	File    string    `json:"file"`           // the attachment's file name
	Type    string    `json:"content_type"`   // and its MIME type
	Data    []byte    `json:"data,omitempty"` // the attachment (base64 in JSON)
}

// sendReport sends a queued report mail over the route's SMTP server.
func sendReport(ctx context.Context, rt store.AlertRoute, d store.Delivery) error {
	if rt.Kind != store.RouteSMTP {
		return fmt.Errorf("report mail %s: alert route %s is a %s route, not smtp: %w", d.ID, rt.ID, rt.Kind, errPermanent)
	}
	var m ReportMail
	if err := json.Unmarshal([]byte(d.Body), &m); err != nil {
		return fmt.Errorf("report mail %s: %w: %w", d.ID, err, errPermanent)
	}
	to := m.To
	if len(to) == 0 {
		to = rt.To
	}
	if len(to) == 0 {
		return fmt.Errorf("report mail %s: no recipients (neither the schedule nor route %s names any): %w", d.ID, rt.ID, errPermanent)
	}
	msg, err := m.message(rt.From, to, d.ID)
	if err != nil {
		return fmt.Errorf("report mail %s: %w", d.ID, err)
	}
	return smtpSend(ctx, rt, to, msg)
}

// message renders m as a multipart/mixed mail: the text, then the report
// attached.
func (m ReportMail) message(from string, to []string, id string) ([]byte, error) {
	clean := func(s string) string { return strings.NewReplacer("\r", " ", "\n", " ").Replace(s) }
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	fmt.Fprintf(&b, "From: %s\r\n", clean(from))
	fmt.Fprintf(&b, "To: %s\r\n", clean(strings.Join(to, ", ")))
	fmt.Fprintf(&b, "Subject: %s\r\n", mime.QEncoding.Encode("utf-8", clean(m.Subject)))
	fmt.Fprintf(&b, "Date: %s\r\n", m.Time.Format(time.RFC1123Z))
	fmt.Fprintf(&b, "Message-ID: <%s@patchbay>\r\n", id)
	fmt.Fprintf(&b, "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=%q\r\n\r\n", mw.Boundary())
	text, err := mw.CreatePart(textproto.MIMEHeader{"Content-Type": {"text/plain; charset=utf-8"}, "Content-Transfer-Encoding": {"base64"}})
	if err != nil {
		return nil, err
	}
	if err := writeBase64(text, []byte(strings.ReplaceAll(m.Text, "\n", "\r\n"))); err != nil {
		return nil, err
	}
	att, err := mw.CreatePart(textproto.MIMEHeader{
		"Content-Type":              {mime.FormatMediaType(m.Type, map[string]string{"name": m.File})},
		"Content-Disposition":       {mime.FormatMediaType("attachment", map[string]string{"filename": m.File})},
		"Content-Transfer-Encoding": {"base64"},
	})
	if err != nil {
		return nil, err
	}
	if err := writeBase64(att, m.Data); err != nil {
		return nil, err
	}
	if err := mw.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// writeBase64 writes data base64-encoded in lines of 76 characters.
func writeBase64(w interface{ Write([]byte) (int, error) }, data []byte) error {
	s := base64.StdEncoding.EncodeToString(data)
	for len(s) > 0 {
		n := min(len(s), 76)
		if _, err := fmt.Fprintf(w, "%s\r\n", s[:n]); err != nil {
			return err
		}
		s = s[n:]
	}
	return nil
}
