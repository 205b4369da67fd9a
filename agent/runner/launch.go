package runner

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"github.com/rs/zerolog"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/patchbay/patchbay/internal/wire"
	"github.com/patchbay/patchbay/plugins/sdk"
)

// proc is one running plugin process.
type proc struct {
	client *sdk.Client
	pc     *plugin.Client
	cmd    *exec.Cmd
	stderr *ring
	once   sync.Once
}

// launch starts the verified plugin bytes. ctx bounds the start-up.
func (r *Runner) launch(ctx context.Context, v verified, log zerolog.Logger) (*proc, error) {
	path, release, err := r.executable(v)
	if err != nil {
		return nil, fmt.Errorf("prepare plugin %s: %w", v.ref.Name, err)
	}
	defer release() // the process has started (or failed to) when launch returns
	sum, _ := hex.DecodeString(v.ref.SHA256)
	cmd := exec.Command(path)
	cmd.Env = r.cfg.Env
	cmd.Dir = r.cfg.Dir
	setProcessGroup(cmd)
	mtls, err := sdk.NewHostTLS()
	if err != nil {
		return nil, fmt.Errorf("start plugin %s: %w", v.ref.Name, err)
	}
	defer mtls.Close() // the plugin has its copy once started
	mtls.Attach(cmd)
	p := &proc{cmd: cmd, stderr: &ring{max: 4 << 10}}
	start := r.cfg.StartTimeout
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < start {
		start = max(time.Until(dl), time.Millisecond)
	}
	p.pc = plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  sdk.Handshake,
		Plugins:          sdk.PluginMap(nil),
		Cmd:              cmd,
		SecureConfig:     &plugin.SecureConfig{Checksum: sum, Hash: sha256.New()}, // fresh per launch
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		TLSConfig:        mtls.Config, // fresh Ed25519 pair each side, each pinning the other
		SkipHostEnv:      true,
		StartTimeout:     start,
		Stderr:           p.stderr,
		Logger:           hclogger(log),
	})
	rpc, err := p.pc.Client()
	if err != nil {
		p.stop()
		return nil, fmt.Errorf("start plugin %s: %w%s", v.ref.Name, err, p.stderr.suffix())
	}
	raw, err := rpc.Dispense(sdk.PluginName)
	if err != nil {
		p.stop()
		return nil, fmt.Errorf("start plugin %s: %w", v.ref.Name, err)
	}
	c, ok := raw.(*sdk.Client)
	if !ok {
		p.stop()
		return nil, fmt.Errorf("start plugin %s: unexpected client type %T", v.ref.Name, raw)
	}
	p.client = c
	return p, nil
}

// stop ends the plugin and everything it started: the whole process group
// is killed first (go-plugin's Kill alone leaves a plugin's children), then
// go-plugin cleans up its side.
func (p *proc) stop() {
	p.once.Do(func() {
		if p.cmd.Process != nil {
			killProcessGroup(p.cmd.Process.Pid)
		}
		p.pc.Kill()
	})
}

// exited reports whether the plugin process has exited; after a transport
// error it waits a moment for go-plugin to notice the exit.
func (p *proc) exited(transportError bool) bool {
	if !transportError {
		return p.pc.Exited()
	}
	for i := 0; i < 50 && !p.pc.Exited(); i++ {
		time.Sleep(10 * time.Millisecond)
	}
	return p.pc.Exited()
}

// deadlinePassed reports whether ctx's deadline is (about to be) reached.
// gRPC propagates the deadline to the plugin, whose side may reset the
// stream a moment before this process's own timer fires.
func deadlinePassed(ctx context.Context) bool {
	if errors.Is(context.Cause(ctx), context.DeadlineExceeded) {
		return true
	}
	dl, ok := ctx.Deadline()
	return ok && time.Until(dl) < 250*time.Millisecond
}

// explain turns an RPC failure into the reason a person needs.
func (p *proc) explain(ctx context.Context, req wire.RunRequest, err error) error {
	switch {
	case errors.Is(err, errOutputCap):
		return err
	case deadlinePassed(ctx):
		return fmt.Errorf("timed out after %v: the plugin was killed", time.Duration(req.Timeout))
	case p.exited(status.Code(errors.Unwrap(err)) == codes.Unavailable || status.Code(err) == codes.Unavailable):
		return fmt.Errorf("plugin %s exited unexpectedly%s", req.Plugin.Name, p.stderr.suffix())
	}
	return fmt.Errorf("plugin %s: %s", req.Plugin.Name, grpcMessage(err))
}

// grpcMessage strips gRPC's "rpc error: code = Unknown desc = " decoration.
func grpcMessage(err error) string {
	s := err.Error()
	if i := strings.Index(s, " desc = "); i >= 0 {
		return s[:strings.Index(s, ": ")+2] + s[i+len(" desc = "):]
	}
	return s
}

// ring keeps the last max bytes written to it.
type ring struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (r *ring) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.b = append(r.b, p...)
	if len(r.b) > r.max {
		r.b = append(r.b[:0], r.b[len(r.b)-r.max:]...)
	}
	return len(p), nil
}

// suffix is ": <last stderr lines>" or "".
func (r *ring) suffix() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := strings.TrimSpace(string(r.b))
	if s == "" {
		return ""
	}
	return ": " + s
}

// hclogger sends go-plugin's own log lines to zerolog at debug level.
func hclogger(log zerolog.Logger) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Name:       "plugin",
		Output:     zerologWriter{log},
		Level:      hclog.Warn,
		JSONFormat: true,
	})
}

type zerologWriter struct{ log zerolog.Logger }

func (w zerologWriter) Write(p []byte) (int, error) {
	w.log.Debug().RawJSON("go_plugin", trimJSON(p)).Msg("plugin host")
	return len(p), nil
}

func trimJSON(p []byte) []byte {
	s := strings.TrimSpace(string(p))
	if !strings.HasPrefix(s, "{") {
		b, _ := jsonString(s)
		return b
	}
	return []byte(s)
}

func jsonString(s string) ([]byte, error) { return json.Marshal(s) }
