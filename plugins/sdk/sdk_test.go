package sdk_test

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"

	"github.com/patchbay/patchbay/plugins/sdk"
	"github.com/patchbay/patchbay/plugins/sdk/sdktest"
)

const testPluginPkg = "github.com/patchbay/patchbay/plugins/sdk/testplugin"

func TestPluginOverGRPC(t *testing.T) {
	c := sdktest.Start(t, sdktest.Build(t, testPluginPkg))
	ctx := context.Background()
	m, err := c.Manifest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if m.Name != "testplugin" || m.Version != "1.0.0" || len(m.Params) != 6 {
		t.Fatalf("manifest = %+v", m)
	}
	chk, err := c.Check(ctx, sdk.Request{Params: sdk.Params{"mode": "clean"}})
	if err != nil || chk.Needed {
		t.Fatalf("check clean = %+v, %v", chk, err)
	}
	res, lines, err := sdktest.Fix(ctx, c, sdk.Request{Params: sdk.Params{"mode": "ok", "lines": "2"}})
	if err != nil || !res.Changed || strings.Join(lines, "|") != "line 1|line 2" {
		t.Fatalf("fix = %+v %q %v", res, lines, err)
	}
	_, _, err = sdktest.Fix(ctx, c, sdk.Request{Params: sdk.Params{"mode": "fail"}})
	if err == nil || !strings.Contains(err.Error(), "deliberate failure") {
		t.Fatalf("fix fail: err = %v", err)
	}
	// The plugin validates parameters itself too.
	_, err = c.Check(ctx, sdk.Request{Params: sdk.Params{"mode": "nope"}})
	if err == nil || !strings.Contains(err.Error(), "not one of") {
		t.Fatalf("bad param: err = %v", err)
	}
	// A line callback error stops the stream.
	stop := errors.New("cap")
	_, err = c.Fix(ctx, sdk.Request{Params: sdk.Params{"mode": "flood"}}, func(string) error { return stop })
	if !errors.Is(err, stop) {
		t.Fatalf("flood: err = %v", err)
	}
}

func TestRunByHandPrintsManifest(t *testing.T) {
	bin := sdktest.Build(t, testPluginPkg)
	out, err := exec.Command(bin, "manifest").Output()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), `"name": "testplugin"`) {
		t.Fatalf("manifest output:\n%s", out)
	}
	if err := exec.Command(bin).Run(); err == nil {
		t.Fatal("running a plugin by hand without arguments succeeded")
	}
}

// A plugin started by another go-plugin host, which sends no key material,
// still serves over go-plugin's own AutoMTLS; and a plugin started by the
// agent's way does not pass its key descriptor's variable on.
func TestPluginTLSBothWays(t *testing.T) {
	path := sdktest.Build(t, testPluginPkg)
	ctx := context.Background()
	c := sdktest.StartAutoMTLS(t, path)
	if m, err := c.Manifest(ctx); err != nil || m.Name != "testplugin" {
		t.Fatalf("AutoMTLS host: manifest %+v, %v", m, err)
	}
	c = sdktest.Start(t, path)
	chk, err := c.Check(ctx, sdk.Request{Params: sdk.Params{"mode": "env", "text": sdk.EnvTLSFD}})
	if err != nil || chk.Summary != "" {
		t.Fatalf("plugin still has %s=%q (err %v)", sdk.EnvTLSFD, chk.Summary, err)
	}
	chk, err = c.Check(ctx, sdk.Request{Params: sdk.Params{"mode": "env", "text": sdk.Handshake.MagicCookieKey}})
	if err != nil || chk.Summary == "" {
		t.Fatalf("env mode does not see the handshake cookie: %q, %v", chk.Summary, err)
	}
}
