package manifest_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/patchbay/patchbay/internal/manifest"
)

func TestValidateParams(t *testing.T) {
	m := manifest.Manifest{Name: "x", Version: "1.0.0", Params: []manifest.Param{
		{Name: "scope", Type: manifest.TypeString, Allowed: []string{"temp", "dns"}, Default: "temp"},
		{Name: "age", Type: manifest.TypeDuration},
		{Name: "n", Type: manifest.TypeInt, Required: true},
		{Name: "force", Type: manifest.TypeBool},
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
		{"huge", map[string]string{"n": strings.Repeat("1", manifest.MaxParamValue+1)}, nil, "at most"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := m.ValidateParams(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, manifest.ErrInvalidParams) {
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
		a, err := manifest.ParseVersion(tt.a)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := manifest.ParseVersion(tt.b)
		if got := a.Compare(b); got != tt.want {
			t.Errorf("%s vs %s = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
	if _, err := manifest.ParseVersion("latest"); err == nil {
		t.Fatal("ParseVersion(latest) succeeded")
	}
}
