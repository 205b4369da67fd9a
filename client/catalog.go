package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"path/filepath"
	"time"

	"github.com/patchbay/patchbay/internal/apiv1"
	"github.com/rs/zerolog"
)

// Upload is one file to publish to the relay's catalog.
type Upload struct {
	// File is the plugin executable or script, streamed to the relay (it is
	// not read into memory).
	File io.Reader
	// FileName is sent as the file part's name; the relay keeps only its base
	// name. A script's name and shell come from it when its header does not
	// say.
	FileName string
	// Signature is the armored SSHSIG signature of the file (FILE.sig).
	Signature []byte
	// Manifest is the plugin's JSON manifest (what `PLUGIN manifest` prints);
	// unused for scripts.
	Manifest []byte
	// Sites it is published to (site references, or "all"); none: every
	// site. Agents of other sites can neither run nor download it.
	Sites []string
}

// PublishPlugin publishes a signed plugin executable (admin). created is
// false when the relay already had this exact file as this version (nothing
// changed). A 409 answer means the version is already published with other
// content: versions are immutable.
func (c *Client) PublishPlugin(ctx context.Context, u Upload) (art apiv1.Artifact, created bool, err error) {
	art, created, err = c.publish(ctx, "/v1/plugins", u, true)
	if err != nil {
		return apiv1.Artifact{}, false, fmt.Errorf("publish plugin %s: %w", filepath.Base(u.FileName), err)
	}
	return art, created, nil
}

// PublishScript publishes a signed script (admin); see PublishPlugin.
func (c *Client) PublishScript(ctx context.Context, u Upload) (art apiv1.Artifact, created bool, err error) {
	art, created, err = c.publish(ctx, "/v1/scripts", u, false)
	if err != nil {
		return apiv1.Artifact{}, false, fmt.Errorf("publish script %s: %w", filepath.Base(u.FileName), err)
	}
	return art, created, nil
}

// Plugins lists the catalog's plugins, every version and platform, by name
// then newest version first; name "" lists all.
func (c *Client) Plugins(ctx context.Context, name string) ([]apiv1.Artifact, error) {
	arts, err := c.listArtifacts(ctx, "/v1/plugins", name)
	if err != nil {
		return nil, fmt.Errorf("list plugins: %w", err)
	}
	return arts, nil
}

// Scripts lists the catalog's scripts like Plugins.
func (c *Client) Scripts(ctx context.Context, name string) ([]apiv1.Artifact, error) {
	arts, err := c.listArtifacts(ctx, "/v1/scripts", name)
	if err != nil {
		return nil, fmt.Errorf("list scripts: %w", err)
	}
	return arts, nil
}

// Plugin returns one plugin of the catalog by SHA-256.
func (c *Client) Plugin(ctx context.Context, sha256 string) (apiv1.Artifact, error) {
	return c.artifact(ctx, "plugin", sha256)
}

// Script returns one script of the catalog by SHA-256.
func (c *Client) Script(ctx context.Context, sha256 string) (apiv1.Artifact, error) {
	return c.artifact(ctx, "script", sha256)
}

func (c *Client) artifact(ctx context.Context, kind, sha256 string) (apiv1.Artifact, error) {
	seg, err := pathSeg("sha256", sha256)
	var art apiv1.Artifact
	if err == nil {
		err = c.do(ctx, http.MethodGet, "/v1/"+kind+"s/"+seg, nil, nil, &art)
	}
	if err != nil {
		return apiv1.Artifact{}, fmt.Errorf("show %s %s: %w", kind, sha256, err)
	}
	return art, nil
}

func (c *Client) listArtifacts(ctx context.Context, path, name string) ([]apiv1.Artifact, error) {
	var q url.Values
	if name != "" {
		q = url.Values{"name": {name}}
	}
	arts := []apiv1.Artifact{}
	if err := c.do(ctx, http.MethodGet, path, q, nil, &arts); err != nil {
		return nil, err
	}
	if arts == nil {
		arts = []apiv1.Artifact{}
	}
	return arts, nil
}

// publish streams u as multipart/form-data to path and decodes the answer.
func (c *Client) publish(ctx context.Context, path string, u Upload, withManifest bool) (apiv1.Artifact, bool, error) {
	if u.File == nil {
		return apiv1.Artifact{}, false, errors.New("no file to upload")
	}
	parts := []multipartPart{{name: apiv1.PartSig, content: u.Signature}}
	if withManifest {
		parts = append(parts, multipartPart{name: apiv1.PartManifest, content: u.Manifest})
	}
	parts = append(parts, multipartPart{name: apiv1.PartFile, fileName: filepath.Base(u.FileName), r: u.File})
	if len(u.Sites) > 0 {
		path += "?" + url.Values{"site": u.Sites}.Encode()
	}
	var art apiv1.Artifact
	status, err := c.doMultipart(ctx, path, parts, &art)
	if err != nil {
		return apiv1.Artifact{}, false, err
	}
	return art, status == http.StatusCreated, nil
}

var errRequestEnded = errors.New("request ended")

// multipartPart is a field (content) or a file (r, streamed).
type multipartPart struct {
	name, fileName string
	content        []byte
	r              io.Reader
}

// doMultipart POSTs parts as a multipart/form-data body to path and decodes
// a 2xx JSON answer into out; it returns the status. The body is produced by
// a goroutine writing into a pipe while the request is sent, so a large file
// is never held in memory. The client's overall 30-second limit does not
// apply (an upload of a large plugin takes longer): connecting, the TLS
// handshake and waiting for the answer once the body is sent stay bounded,
// and ctx bounds the whole.
func (c *Client) doMultipart(ctx context.Context, path string, parts []multipartPart, out any) (int, error) {
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	var writeErr error // set before done is closed
	done := make(chan struct{})
	go func() {
		defer close(done)
		writeErr = writeParts(mw, parts)
		pw.CloseWithError(writeErr)
	}()
	// Whatever happens, stop the writer and wait for it before returning.
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			pr.CloseWithError(errRequestEnded)
			<-done
		}
	}
	defer stop()

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base.String()+path, pr)
	if err != nil {
		return 0, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", UserAgent)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	if c.cfg.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.cfg.Token)
	}
	hc := &http.Client{Transport: c.hc.Transport, CheckRedirect: c.hc.CheckRedirect}

	start := time.Now()
	resp, err := hc.Do(req)
	log := zerolog.Ctx(ctx)
	if err != nil {
		log.Debug().Str("method", http.MethodPost).Str("path", path).Err(err).Msg("request failed")
		stop()
		if writeErr != nil && !errors.Is(writeErr, errRequestEnded) && !errors.Is(writeErr, io.ErrClosedPipe) {
			return 0, writeErr // reading the file failed, not the relay
		}
		return 0, c.connError(err)
	}
	defer resp.Body.Close()
	log.Debug().Str("method", http.MethodPost).Str("path", path).Int("status", resp.StatusCode).
		Dur("duration", time.Since(start)).Msg("request")
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, apiError(resp)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxResponse)).Decode(out); err != nil {
		return resp.StatusCode, fmt.Errorf("decode answer from %s: %w", c.base, err)
	}
	return resp.StatusCode, nil
}

func writeParts(mw *multipart.Writer, parts []multipartPart) error {
	for _, p := range parts {
		var (
			w   io.Writer
			err error
		)
		if p.fileName != "" || p.r != nil {
			w, err = mw.CreateFormFile(p.name, p.fileName)
		} else {
			w, err = mw.CreateFormField(p.name)
		}
		if err != nil {
			return err
		}
		if p.r != nil {
			_, err = io.Copy(w, p.r)
		} else {
			_, err = w.Write(p.content)
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", p.name, err)
		}
	}
	return mw.Close()
}
