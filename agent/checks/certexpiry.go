package checks

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Defaults of builtin:cert-expiry.
const (
	defaultCertDays    = 30
	defaultCertTimeout = 10 * time.Second
	maxCertFile        = 1 << 20 // bigger files are not certificates
)

// certFileExts are the files a directory path is searched for.
var certFileExts = []string{".pem", ".crt", ".cer", ".der"}

// foundCert is one certificate and where it came from.
type foundCert struct {
	where string
	cert  *x509.Certificate
}

// certExpiry fails while a certificate in path (a PEM or DER file, or a
// directory: its *.pem, *.crt, *.cer and *.der files, not recursing) or
// presented by the TLS server at host (HOST:PORT; the whole chain it sends)
// expires within days days (threshold is the same), or has expired. A file
// that holds no certificate, or one that does not parse, is an error naming
// the file. The TLS dial does not verify the chain (expiry is what is
// checked, also of a self-signed or private-CA certificate) and gives up
// after timeout (default 10s).
func certExpiry(ctx context.Context, p map[string]string, now time.Time) (bool, string, error) {
	path, host := p["path"], p["host"]
	if path == "" && host == "" {
		return false, "", errors.New("give path (a certificate file or directory) or host (HOST:PORT), or both")
	}
	days := defaultCertDays
	daysS := p["days"]
	if daysS == "" {
		daysS = p["threshold"]
	}
	if daysS != "" {
		n, err := strconv.Atoi(daysS)
		if err != nil || n < 0 || n > 3650 {
			return false, "", fmt.Errorf("days %q: want a whole number of days 0..3650", daysS)
		}
		days = n
	}
	timeout := defaultCertTimeout
	if s := p["timeout"]; s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 || d > 5*time.Minute {
			return false, "", fmt.Errorf("timeout %q: want a duration up to 5m, such as 10s", s)
		}
		timeout = d
	}
	var certs []foundCert
	if path != "" {
		c, err := certsInPath(path)
		if err != nil {
			return false, "", err
		}
		certs = append(certs, c...)
	}
	if host != "" {
		c, err := certsOfHost(ctx, host, timeout)
		if err != nil {
			return false, "", err
		}
		certs = append(certs, c...)
	}
	return judgeCerts(certs, days, now)
}

// judgeCerts fails when any certificate's NotAfter is within days of now,
// naming each one, soonest first.
func judgeCerts(certs []foundCert, days int, now time.Time) (bool, string, error) {
	if len(certs) == 0 {
		return false, "", errors.New("no certificate found")
	}
	slices.SortStableFunc(certs, func(a, b foundCert) int { return a.cert.NotAfter.Compare(b.cert.NotAfter) })
	limit := now.Add(time.Duration(days) * 24 * time.Hour)
	var bad []string
	for _, c := range certs {
		na := c.cert.NotAfter
		if !na.Before(limit) {
			continue
		}
		name := c.cert.Subject.String()
		if name == "" {
			name = "(no subject)"
		}
		if na.Before(now) {
			bad = append(bad, fmt.Sprintf("%s (%s) expired %s", name, c.where, na.UTC().Format(time.DateOnly)))
		} else {
			bad = append(bad, fmt.Sprintf("%s (%s) expires %s, in %d days", name, c.where, na.UTC().Format(time.DateOnly),
				int(na.Sub(now).Hours()/24)))
		}
	}
	if len(bad) > 0 {
		return false, strings.Join(bad, "; "), nil
	}
	first := certs[0]
	return true, fmt.Sprintf("%d certificate(s) valid for more than %d days; first to expire: %s (%s) on %s",
		len(certs), days, first.cert.Subject.String(), first.where, first.cert.NotAfter.UTC().Format(time.DateOnly)), nil
}

// certsInPath reads a certificate file, or the certificate files of a
// directory.
func certsInPath(path string) ([]foundCert, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("path: %w", err)
	}
	if !fi.IsDir() {
		return certsInFile(path, true)
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return nil, fmt.Errorf("path: %w", err)
	}
	var out []foundCert
	for _, e := range entries {
		if !e.Type().IsRegular() || !slices.Contains(certFileExts, strings.ToLower(filepath.Ext(e.Name()))) {
			continue
		}
		c, err := certsInFile(filepath.Join(path, e.Name()), false)
		if err != nil {
			return nil, err
		}
		out = append(out, c...)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no certificate files (%s) in the directory", path, strings.Join(certFileExts, ", "))
	}
	return out, nil
}

// certsInFile parses the certificates of one PEM file (every CERTIFICATE
// block) or DER file. In a directory (alone false) a PEM file holding only
// other blocks (a private key next to its certificate) is skipped; a file
// given as path must hold a certificate.
func certsInFile(name string, alone bool) ([]foundCert, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(b) > maxCertFile {
		return nil, fmt.Errorf("%s: %d bytes is too big for a certificate file", name, len(b))
	}
	var out []foundCert
	blocks, rest := 0, b
	for {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		blocks++
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: certificate %d: %w", name, len(out)+1, err)
		}
		out = append(out, foundCert{where: name, cert: c})
	}
	switch {
	case blocks == 0:
		c, err := x509.ParseCertificate(b)
		if err != nil {
			return nil, fmt.Errorf("%s: neither PEM nor a DER certificate: %w", name, err)
		}
		return []foundCert{{where: name, cert: c}}, nil
	case len(out) == 0 && alone:
		return nil, fmt.Errorf("%s: no CERTIFICATE block among its %d PEM blocks", name, blocks)
	}
	return out, nil
}

// certsOfHost dials host over TLS and returns the certificates it presents.
func certsOfHost(ctx context.Context, host string, timeout time.Duration) ([]foundCert, error) {
	h, _, err := net.SplitHostPort(host)
	if err != nil || h == "" {
		return nil, fmt.Errorf("host %q: want HOST:PORT", host)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	d := tls.Dialer{Config: &tls.Config{ServerName: h, InsecureSkipVerify: true}} //nolint:gosec // expiry is checked, not trust
	conn, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return nil, fmt.Errorf("tls %s: %w", host, err)
	}
	defer conn.Close()
	var out []foundCert
	for _, c := range conn.(*tls.Conn).ConnectionState().PeerCertificates {
		out = append(out, foundCert{where: host, cert: c})
	}
	return out, nil
}
