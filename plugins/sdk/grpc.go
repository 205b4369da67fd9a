package sdk

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/patchbay/patchbay/plugins/sdk/pluginpb"
)

// Handshake is shared by the agent and every plugin. A plugin started
// without the cookie in its environment is being run by a person.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  1,
	MagicCookieKey:   "PATCHBAY_PLUGIN",
	MagicCookieValue: "b1f0c5e2-remediation",
}

// PluginName is the name under which the remediation service is dispensed.
const PluginName = "remediation"

// GRPCPlugin is the go-plugin glue. Plugins set Impl (through Serve); the
// agent leaves it nil and dispenses a *Client.
type GRPCPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	Impl Plugin
}

// GRPCServer registers the plugin's service.
func (p *GRPCPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	m := p.Impl.Manifest()
	pluginpb.RegisterPluginServer(s, &server{impl: p.Impl, manifest: m})
	return nil
}

// GRPCClient returns a *Client.
func (p *GRPCPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return &Client{rpc: pluginpb.NewPluginClient(c)}, nil
}

// PluginMap is what both sides hand go-plugin.
func PluginMap(impl Plugin) map[string]plugin.Plugin {
	return map[string]plugin.Plugin{PluginName: &GRPCPlugin{Impl: impl}}
}

// Serve runs a plugin. Called by a plugin's main; it does not return.
//
// Without the agent's handshake cookie it behaves as a small CLI:
// `plugin manifest` prints the manifest as JSON, anything else prints usage.
func Serve(p Plugin) {
	m := p.Manifest()
	if err := m.Validate(); err != nil {
		fmt.Fprintf(os.Stderr, "plugin: %v\n", err)
		os.Exit(2)
	}
	if os.Getenv(Handshake.MagicCookieKey) != Handshake.MagicCookieValue {
		os.Exit(runByHand(m, os.Args[1:], os.Stdout, os.Stderr))
	}
	tlsCfg, fromHost, err := pluginTLS()
	if err != nil {
		fmt.Fprintf(os.Stderr, "plugin: %v\n", err)
		os.Exit(1)
	}
	var tlsProvider func() (*tls.Config, error) // nil: go-plugin's AutoMTLS
	if fromHost {
		tlsProvider = func() (*tls.Config, error) { return tlsCfg, nil }
	}
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: Handshake,
		TLSProvider:     tlsProvider,
		Plugins:         PluginMap(p),
		GRPCServer:      plugin.DefaultGRPCServer,
		Logger: hclog.New(&hclog.LoggerOptions{
			Name:       m.Name,
			Output:     os.Stderr,
			JSONFormat: true,
			Level:      hclog.Info,
		}),
	})
	os.Exit(0)
}

func runByHand(m Manifest, args []string, stdout, stderr io.Writer) int {
	if len(args) == 1 && args[0] == "manifest" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(m); err != nil {
			fmt.Fprintf(stderr, "manifest: %v\n", err)
			return 1
		}
		return 0
	}
	fmt.Fprintf(stderr, "%s %s: a Patchbay remediation plugin, started by patchbay-agent.\n\n"+
		"usage: %s manifest    print the manifest as JSON\n", m.Name, m.Version, m.Name)
	return 2
}

// server adapts a Plugin to the generated gRPC service. The plugin process
// validates parameters again: the agent already did, but a plugin does not
// rely on its caller for its own safety.
type server struct {
	pluginpb.UnimplementedPluginServer
	impl     Plugin
	manifest Manifest
}

func (s *server) Manifest(context.Context, *pluginpb.Empty) (*pluginpb.ManifestResponse, error) {
	return ManifestToProto(s.manifest), nil
}

func (s *server) request(req *pluginpb.RunRequest) (Request, error) {
	params, err := s.manifest.ValidateParams(req.GetParams())
	if err != nil {
		return Request{}, err
	}
	r := Request{Params: params}
	if a := req.GetAttachment(); a != nil {
		r.Attachment = &Attachment{Name: a.Name, Path: a.Path, SHA256: a.Sha256}
	}
	return r, nil
}

func (s *server) Check(ctx context.Context, req *pluginpb.RunRequest) (*pluginpb.CheckResponse, error) {
	r, err := s.request(req)
	if err != nil {
		return nil, err
	}
	res, err := s.impl.Check(ctx, r)
	if err != nil {
		return nil, err
	}
	return &pluginpb.CheckResponse{Needed: res.Needed, Summary: res.Summary, Details: res.Details}, nil
}

func (s *server) Fix(req *pluginpb.RunRequest, stream pluginpb.Plugin_FixServer) error {
	r, err := s.request(req)
	if err != nil {
		return err
	}
	out := &Output{send: func(line string) error {
		return stream.Send(&pluginpb.FixEvent{Event: &pluginpb.FixEvent_Line{Line: line}})
	}}
	res, err := s.impl.Fix(stream.Context(), r, out)
	if err != nil {
		return err
	}
	if err := out.Err(); err != nil {
		return err
	}
	return stream.Send(&pluginpb.FixEvent{Event: &pluginpb.FixEvent_Result{Result: &pluginpb.FixResult{
		Changed: res.Changed, Summary: res.Summary, RebootRequired: res.RebootRequired, Details: res.Details,
	}}})
}

// ManifestToProto converts a manifest for the wire.
func ManifestToProto(m Manifest) *pluginpb.ManifestResponse {
	r := &pluginpb.ManifestResponse{
		Name: m.Name, Version: m.Version, Description: m.Description,
		Os: m.OS, NeedsConsent: m.NeedsConsent, MayReboot: m.MayReboot,
	}
	for _, p := range m.Params {
		r.Params = append(r.Params, &pluginpb.Param{
			Name: p.Name, Type: p.Type, Default: p.Default, Required: p.Required,
			Allowed: p.Allowed, Description: p.Description,
		})
	}
	return r
}

// ManifestFromProto converts a manifest from the wire.
func ManifestFromProto(r *pluginpb.ManifestResponse) Manifest {
	m := Manifest{
		Name: r.GetName(), Version: r.GetVersion(), Description: r.GetDescription(),
		OS: r.GetOs(), NeedsConsent: r.GetNeedsConsent(), MayReboot: r.GetMayReboot(),
	}
	for _, p := range r.GetParams() {
		m.Params = append(m.Params, Param{
			Name: p.GetName(), Type: p.GetType(), Default: p.GetDefault(), Required: p.GetRequired(),
			Allowed: p.GetAllowed(), Description: p.GetDescription(),
		})
	}
	return m
}

// Client is the agent's handle on a running plugin.
type Client struct {
	rpc pluginpb.PluginClient
}

// Manifest asks the plugin for its manifest.
func (c *Client) Manifest(ctx context.Context) (Manifest, error) {
	r, err := c.rpc.Manifest(ctx, &pluginpb.Empty{})
	if err != nil {
		return Manifest{}, fmt.Errorf("manifest: %w", err)
	}
	return ManifestFromProto(r), nil
}

func toProto(req Request) *pluginpb.RunRequest {
	r := &pluginpb.RunRequest{Params: req.Params}
	if a := req.Attachment; a != nil {
		r.Attachment = &pluginpb.Attachment{Name: a.Name, Path: a.Path, Sha256: a.SHA256}
	}
	return r
}

// Check runs the plugin's Check.
func (c *Client) Check(ctx context.Context, req Request) (CheckResult, error) {
	r, err := c.rpc.Check(ctx, toProto(req))
	if err != nil {
		return CheckResult{}, fmt.Errorf("check: %w", err)
	}
	return CheckResult{Needed: r.GetNeeded(), Summary: r.GetSummary(), Details: r.GetDetails()}, nil
}

// ErrNoResult means a Fix stream ended without a result.
var ErrNoResult = errors.New("fix: plugin ended without a result")

// Fix runs the plugin's Fix, calling line for every output line. If line
// returns an error (the output cap was hit) the call is cancelled and that
// error returned.
func (c *Client) Fix(ctx context.Context, req Request, line func(string) error) (FixResult, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.rpc.Fix(ctx, toProto(req))
	if err != nil {
		return FixResult{}, fmt.Errorf("fix: %w", err)
	}
	for {
		ev, err := stream.Recv()
		if err == io.EOF {
			return FixResult{}, ErrNoResult
		}
		if err != nil {
			return FixResult{}, fmt.Errorf("fix: %w", err)
		}
		switch e := ev.Event.(type) {
		case *pluginpb.FixEvent_Line:
			if err := line(e.Line); err != nil {
				return FixResult{}, err
			}
		case *pluginpb.FixEvent_Result:
			r := e.Result
			return FixResult{Changed: r.Changed, Summary: r.Summary, RebootRequired: r.RebootRequired, Details: r.Details}, nil
		}
	}
}
