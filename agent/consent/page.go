package consent

import (
	"bytes"
	"crypto/rand"
	_ "embed"
	"encoding/base64"
	"html/template"
	"net/http"
	"time"
)

//go:embed page.html
var pageHTML string

// pageTmpl renders the consent page. html/template escapes every value by
// context; the page's script builds later updates with textContent only.
var pageTmpl = template.Must(template.New("page").Funcs(template.FuncMap{
	"seconds":      func(ms int64) int64 { return (ms + 999) / 1000 },
	"clock":        func(t time.Time) string { return t.Local().Format("15:04:05") },
	"approveLabel": func(desktop string) string { return approveLabels[desktop] },
}).Parse(pageHTML))

// approveLabels label the page's approving button by what a request offers
// for the screen (pendingView.Desktop).
var approveLabels = map[string]string{"": "Approve", DesktopControl: labelControl, DesktopViewOnly: labelAllowViewOnly}

// pageData is what the template gets.
type pageData struct {
	stateView
	Nonce         string
	ApproveLabels map[string]string
}

func (w *webServer) servePage(rw http.ResponseWriter, _ *http.Request) {
	var n [16]byte
	_, _ = rand.Read(n[:])
	nonce := base64.RawStdEncoding.EncodeToString(n[:])
	var buf bytes.Buffer
	if err := pageTmpl.Execute(&buf, pageData{stateView: w.view(), Nonce: nonce, ApproveLabels: approveLabels}); err != nil {
		w.c.log.Error().Err(err).Msg("consent page: render")
		http.Error(rw, "internal error", http.StatusInternalServerError)
		return
	}
	h := rw.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'nonce-"+nonce+"'; style-src 'nonce-"+nonce+
		"'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
	h.Set("Content-Type", "text/html; charset=utf-8")
	_, _ = rw.Write(buf.Bytes())
}
