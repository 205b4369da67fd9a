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

func TestValidateParams(t *testing.T) {
	m := sdk.Manifest{Name: "x", Version: "1.0.0", Params: []sdk.Param{
		{Name: "scope", Type: sdk.TypeString, Allowed: []string{"temp", "dns"}, Default: "temp"},
		{Name: "age", Type: sdk.TypeDuration},
		{Name: "n", Type: sdk.TypeInt, Required: true},
		{Name: "force", Type: sdk.TypeBool},
	}}
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		in      map[string]string
		want    map[string]string
		wantErr string
	}{
		{"defaults", map[string]string{"n": "3"}, map[string]string{"n": "3", "scope": "temp"}, ""},
		{"all", map[string]string{"n": "3", "scope": "dns", "age": "5m", "force": "true"},
			map[string]string{"n": "3", "scope": "dns", "age": "5m", "force": "true"}, ""},
		{"missing required", map[string]string{}, nil, `"n" is required`},
		{"unknown", map[string]string{"n": "1", "rm": "-rf"}, nil, `unknown parameter "rm"`},
		{"not allowed", map[string]string{"n": "1", "scope": "all"}, nil, "not one of temp, dns"},
		{"bad int", map[string]string{"n": "three"}, nil, "not an integer"},
		{"bad bool", map[string]string{"n": "1", "force": "yes please"}, nil, "not a boolean"},
		{"bad duration", map[string]string{"n": "1", "age": "soon"}, nil, "not a duration"},
		{"nul", map[string]string{"n": "1\x00"}, nil, "NUL"},
		{"huge", map[string]string{"n": strings.Repeat("1", sdk.MaxParamValue+1)}, nil, "at most"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := m.ValidateParams(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, sdk.ErrInvalidParams) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Fatalf("got %v, want %v", got, tt.want)
				}
			}
		})
	}
}

func TestVersionCompare(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want int
	}{{"1.0.0", "1.0.0", 0}, {"1.2.0", "1.10.0", -1}, {"v2.0.0", "1.9.9", 1}, {"1.0.1-rc1", "1.0.0", 1}} {
		a, err := sdk.ParseVersion(tt.a)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := sdk.ParseVersion(tt.b)
		if got := a.Compare(b); got != tt.want {
			t.Errorf("%s vs %s = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
	if _, err := sdk.ParseVersion("latest"); err == nil {
		t.Fatal("ParseVersion(latest) succeeded")
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
