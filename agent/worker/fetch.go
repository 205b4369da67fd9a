package worker

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"time"
)

// MaxArtifact bounds a download (the relay refuses larger uploads).
const MaxArtifact = 256 << 20

// Fetcher downloads catalog files from the relay over HTTPS with the
// agent's client certificate.
type Fetcher struct {
	server string
	client *http.Client
}

// NewFetcher returns a fetcher for the relay at server (its base URL).
func NewFetcher(server string, tlsCfg *tls.Config) *Fetcher {
	tr := &http.Transport{
		TLSClientConfig:     tlsCfg,
		Proxy:               http.ProxyFromEnvironment,
		TLSHandshakeTimeout: 30 * time.Second,
		IdleConnTimeout:     90 * time.Second,
		MaxIdleConns:        2,
	}
	return &Fetcher{server: server, client: &http.Client{Transport: tr, Timeout: 10 * time.Minute}}
}

// Fetch implements runner.Fetcher.
func (f *Fetcher) Fetch(ctx context.Context, sha string) ([]byte, []byte, error) {
	content, err := f.get(ctx, "/v1/agent/artifacts/"+sha, MaxArtifact)
	if err != nil {
		return nil, nil, err
	}
	sig, err := f.get(ctx, "/v1/agent/artifacts/"+sha+"/sig", 64<<10)
	if err != nil {
		return nil, nil, fmt.Errorf("signature: %w", err)
	}
	return content, sig, nil
}

// Get downloads path (e.g. /releases/V/SHA256SUMS) from the relay, at most
// limit bytes. An answer other than 200 is a *StatusError; anything else
// (the relay cannot be reached, the transfer broke) is a transport error.
func (f *Fetcher) Get(ctx context.Context, path string, limit int64) ([]byte, error) {
	return f.get(ctx, path, limit)
}

// StatusError is a relay's answer other than 200 OK.
type StatusError struct {
	Status string
	Body   string
}

func (e *StatusError) Error() string { return "relay answered " + e.Status + ": " + e.Body }

func (f *Fetcher) get(ctx context.Context, path string, limit int64) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.server+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return nil, &StatusError{Status: resp.Status, Body: string(msg)}
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("relay sent more than %d bytes", limit)
	}
	return b, nil
}
