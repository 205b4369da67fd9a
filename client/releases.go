package client

import (
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/patchbay/patchbay/internal/installer"
	"github.com/patchbay/patchbay/internal/release"
)

// Release is one version the relay serves at /releases/ (its `serve
// --releases` directory). Signed says only that SHA256SUMS.sig exists: the
// caller checks it (release.Verify).
type Release struct {
	Version string         `json:"version"`
	Signed  bool           `json:"signed"`
	Files   []release.File `json:"files"`
}

// Releases lists the releases the relay serves (no credential needed).
func (c *Client) Releases(ctx context.Context) ([]Release, error) {
	var out []Release
	if err := c.do(ctx, http.MethodGet, "/releases/", nil, nil, &out); err != nil {
		return nil, fmt.Errorf("list releases: %w", err)
	}
	return out, nil
}

// ReleaseFile downloads one file of a release, up to limit bytes.
func (c *Client) ReleaseFile(ctx context.Context, version, name string, limit int64) ([]byte, error) {
	v, err := pathSeg("release version", version)
	if err != nil {
		return nil, err
	}
	n, err := pathSeg("release file", name)
	if err != nil {
		return nil, err
	}
	b, err := c.getRaw(ctx, "/releases/"+v+"/"+n, limit)
	if err != nil {
		return nil, fmt.Errorf("download release %s file %s: %w", version, name, err)
	}
	return b, nil
}

// InstallScript downloads the install script the relay serves for goos.
func (c *Client) InstallScript(ctx context.Context, goos string) ([]byte, error) {
	name, err := installer.ScriptName(goos)
	if err != nil {
		return nil, err
	}
	b, err := c.getRaw(ctx, installer.PathPrefix+name, 1<<20)
	if err != nil {
		return nil, fmt.Errorf("download install script %s: %w", name, err)
	}
	return b, nil
}

// getRaw GETs path and returns the body of a 2xx answer, refusing more than
// limit bytes.
func (c *Client) getRaw(ctx context.Context, path string, limit int64) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base.String()+path, nil)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("User-Agent", UserAgent)
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, c.connError(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, apiError(resp)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read answer from %s: %w", c.base, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("answer from %s is larger than %d bytes", c.base, limit)
	}
	return b, nil
}
