package alerts

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/smtp"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/patchbay/patchbay/internal/backoff"
	"github.com/patchbay/patchbay/server/store"
)

// Webhook request headers. The signature is
//
//	X-Patchbay-Signature: sha256=HEX(HMAC-SHA256(secret, TIMESTAMP + "." + BODY))
//
// where TIMESTAMP is the X-Patchbay-Timestamp header (Unix seconds) and BODY
// the raw request body: a receiver recomputes it with its copy of the
// route's secret, compares in constant time and refuses timestamps too far
// from its clock (replays). X-Patchbay-Delivery names the notification: a
// receiver may see one twice (delivery is at least once) and can drop the
// second.
const (
	HeaderSignature = "X-Patchbay-Signature"
	HeaderTimestamp = "X-Patchbay-Timestamp"
	HeaderDelivery  = "X-Patchbay-Delivery"
	HeaderEvent     = "X-Patchbay-Event"
)

// Sign returns the X-Patchbay-Signature value for body sent at timestamp.
func Sign(secret []byte, timestamp string, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(timestamp))
	m.Write([]byte("."))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Verify checks a webhook request's signature (for receivers written in Go).
func Verify(secret []byte, timestamp, signature string, body []byte) bool {
	return hmac.Equal([]byte(Sign(secret, timestamp, body)), []byte(signature))
}

// claimTTL is how long a relay holds a notification for one attempt: longer
// than any attempt (AttemptTimeout), after which another relay may retry a
// notification whose relay died mid-attempt.
func (s *Service) claimTTL() time.Duration { return s.cfg.AttemptTimeout*2 + 30*time.Second }

// idlePoll is how often the loop looks at the outbox with nothing due: what
// another relay of the tier queued is seen within it.
const idlePoll = 5 * time.Second

func (s *Service) deliverLoop(ctx context.Context) {
	for ctx.Err() == nil {
		d, ok, err := s.st.ClaimDelivery(ctx, s.claimTTL())
		if err != nil {
			if ctx.Err() == nil {
				s.log.Error().Err(err).Msg("alert deliveries: claim failed; trying again")
			}
			if !backoff.Sleep(ctx, idlePoll) {
				return
			}
			continue
		}
		if ok {
			s.attempt(ctx, d)
			continue
		}
		wait := idlePoll
		if in, any, err := s.st.NextDeliveryIn(ctx); err == nil && any {
			wait = min(max(in, 10*time.Millisecond), idlePoll)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-s.wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// attempt sends d once and records the outcome: done, or retried after a
// backoff, or given up once older than MaxAge.
func (s *Service) attempt(ctx context.Context, d store.Delivery) {
	actx, cancel := context.WithTimeout(ctx, s.cfg.AttemptTimeout)
	err := s.send(actx, d)
	cancel()
	if ctx.Err() != nil {
		return // shutting down: the claim expires and the row is retried
	}
	log := s.log.With().Str("delivery_id", d.ID).Str("alert_id", d.AlertID).Str("route_id", d.RouteID).Int("attempt", d.Attempts).Logger()
	done, lastErr, retry := true, "", time.Duration(0)
	if err != nil {
		lastErr = err.Error()
		b := backoff.Backoff{Base: s.cfg.RetryBase, Max: s.cfg.RetryMax}
		for range d.Attempts - 1 {
			b.Next()
		}
		retry = b.Next()
		if time.Since(d.CreatedAt)+retry > s.cfg.MaxAge || errors.Is(err, errRouteGone) || errors.Is(err, errPermanent) {
			log.Error().Err(err).Msg("alert notification given up")
		} else {
			done = false
			log.Warn().Err(err).Dur("retry_in", retry).Msg("alert notification failed; will retry")
		}
	}
	if ok, ferr := s.st.FinishDelivery(ctx, d, done, lastErr, retry); ferr != nil {
		log.Error().Err(ferr).Msg("alert notification: recording the attempt failed; it will be retried")
	} else if !ok {
		log.Warn().Msg("alert notification: the claim expired during the attempt; another relay retries it")
	}
	if s.cfg.OnAttempt != nil {
		s.cfg.OnAttempt(d, err)
	}
}

var errRouteGone = errors.New("the alert route was deleted")

// errPermanent marks an error that another attempt cannot cure.
var errPermanent = errors.New("not retried")

func (s *Service) send(ctx context.Context, d store.Delivery) error {
	rt, err := s.st.GetAlertRoute(ctx, d.RouteID)
	if errors.Is(err, store.ErrNotFound) {
		return errRouteGone
	}
	if err != nil {
		return err
	}
	if d.Event == store.EventReportMail {
		return sendReport(ctx, rt, d)
	}
	switch rt.Kind {
	case store.RouteWebhook:
		return sendWebhook(ctx, rt, d)
	case store.RouteSMTP:
		return sendMail(ctx, rt, d)
	}
	return fmt.Errorf("alert route %s: unknown kind %q", rt.ID, rt.Kind)
}

func sendWebhook(ctx context.Context, rt store.AlertRoute, d store.Delivery) error {
	body := []byte(d.Body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, rt.Target, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("webhook %s: %w", rt.Target, err)
	}
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "patchbay-relay")
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderSignature, Sign([]byte(rt.Secret), ts, body))
	req.Header.Set(HeaderDelivery, d.ID)
	req.Header.Set(HeaderEvent, d.Event)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if rt.CAPEM != "" {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM([]byte(rt.CAPEM)) {
			return fmt.Errorf("webhook %s: the route's CA holds no PEM certificate", rt.Target)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return fmt.Errorf("webhook %s: %w", rt.Target, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("webhook %s: %s: %s", rt.Target, resp.Status, strings.TrimSpace(string(msg)))
	}
	return nil
}

// isLoopback reports whether host is a loopback address or localhost.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// sendMail sends alert notification d over SMTP to the route's recipients.
func sendMail(ctx context.Context, rt store.AlertRoute, d store.Delivery) error {
	var ev store.AlertEvent
	if err := json.Unmarshal([]byte(d.Body), &ev); err != nil {
		return fmt.Errorf("smtp route %s: notification %s: %w", rt.ID, d.ID, err)
	}
	return smtpSend(ctx, rt, rt.To, mailMessage(rt, d, ev))
}

// smtpSend sends msg to the route's SMTP server (smtp://HOST:PORT) for
// recipients to: STARTTLS is required except to a loopback server, and the
// password is never sent without TLS.
func smtpSend(ctx context.Context, rt store.AlertRoute, to []string, msg []byte) error {
	u, err := url.Parse(rt.Target)
	if err != nil || u.Scheme != "smtp" || u.Hostname() == "" {
		return fmt.Errorf("smtp route %s: %q is not smtp://HOST:PORT", rt.ID, rt.Target)
	}
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = "587"
	}
	var dl net.Dialer
	conn, err := dl.DialContext(ctx, "tcp", net.JoinHostPort(host, port))
	if err != nil {
		return fmt.Errorf("smtp %s: %w", rt.Target, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		conn.Close()
		return fmt.Errorf("smtp %s: %w", rt.Target, err)
	}
	defer c.Close()
	if err := c.Hello("patchbay-relay"); err != nil {
		return fmt.Errorf("smtp %s: %w", rt.Target, err)
	}
	tlsOn := false
	if ok, _ := c.Extension("STARTTLS"); ok {
		cfg := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
		if rt.CAPEM != "" {
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM([]byte(rt.CAPEM)) {
				return fmt.Errorf("smtp %s: the route's CA holds no PEM certificate", rt.Target)
			}
			cfg.RootCAs = pool
		}
		if err := c.StartTLS(cfg); err != nil {
			return fmt.Errorf("smtp %s: STARTTLS: %w", rt.Target, err)
		}
		tlsOn = true
	} else if !isLoopback(host) {
		return fmt.Errorf("smtp %s: the server does not offer STARTTLS; refusing to send alerts in clear text (use a server with STARTTLS)", rt.Target)
	}
	if rt.User != "" {
		if !tlsOn && !isLoopback(host) {
			return fmt.Errorf("smtp %s: refusing to send the password without TLS", rt.Target)
		}
		if err := c.Auth(smtp.PlainAuth("", rt.User, rt.Secret, host)); err != nil {
			return fmt.Errorf("smtp %s: auth as %s: %w", rt.Target, rt.User, err)
		}
	}
	if err := c.Mail(rt.From); err != nil {
		return fmt.Errorf("smtp %s: MAIL FROM %s: %w", rt.Target, rt.From, err)
	}
	for _, to := range to {
		if err := c.Rcpt(to); err != nil {
			return fmt.Errorf("smtp %s: RCPT TO %s: %w", rt.Target, to, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("smtp %s: DATA: %w", rt.Target, err)
	}
	if _, err := w.Write(msg); err != nil {
		return fmt.Errorf("smtp %s: DATA: %w", rt.Target, err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("smtp %s: DATA: %w", rt.Target, err)
	}
	return c.Quit()
}

// mailMessage renders an alert event as a plain-text mail.
func mailMessage(rt store.AlertRoute, d store.Delivery, ev store.AlertEvent) []byte {
	a := ev.Alert
	who := a.Hostname
	if who == "" {
		who = a.AgentID
	}
	subject := fmt.Sprintf("[patchbay] %s %s %s", strings.ToUpper(ev.Event), a.Severity, a.Kind)
	if who != "" {
		subject += " on " + who
	}
	if a.Check != "" {
		subject += ": " + a.Check
	}
	var b strings.Builder
	clean := func(s string) string { return strings.NewReplacer("\r", " ", "\n", " ").Replace(s) }
	fmt.Fprintf(&b, "From: %s\r\n", clean(rt.From))
	fmt.Fprintf(&b, "To: %s\r\n", clean(strings.Join(rt.To, ", ")))
	fmt.Fprintf(&b, "Subject: %s\r\n", clean(subject))
	fmt.Fprintf(&b, "Date: %s\r\n", ev.Time.Format(time.RFC1123Z))
	fmt.Fprintf(&b, "Message-ID: <%s@patchbay>\r\n", d.ID)
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n")
	fmt.Fprintf(&b, "%s\r\n\r\n", a.Summary)
	fmt.Fprintf(&b, "Alert:    %s\r\nEvent:    %s by %s\r\nKind:     %s\r\nSeverity: %s\r\nState:    %s\r\n", a.ID, ev.Event, ev.Actor, a.Kind, a.Severity, a.State)
	if who != "" {
		fmt.Fprintf(&b, "Agent:    %s (%s)\r\n", who, a.AgentID)
	}
	if a.Check != "" {
		fmt.Fprintf(&b, "Check:    %s\r\n", a.Check)
	}
	fmt.Fprintf(&b, "Count:    %d, opened %s\r\n", a.Count, a.OpenedAt.Format(time.RFC3339))
	for k, v := range a.Details {
		fmt.Fprintf(&b, "%s: %s\r\n", k, v)
	}
	fmt.Fprintf(&b, "\r\npatchbay alerts ack %s\r\n", a.ID)
	return []byte(b.String())
}
