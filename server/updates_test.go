package server

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/patchbay/patchbay/server/store"
)

func TestParsePendingUpdates(t *testing.T) {
	check := `{"manager":"apt","security_only":false,"pending":[
		{"name":"openssl","from":"3.0.11-1","to":"3.0.15-1","arch":"amd64","repo":"Debian-Security:12/stable-security","security":true},
		{"name":"tzdata","to":"2024b","repo":"Debian:12/stable"},
		{"name":"openssl","to":"9","arch":"amd64"},
		{"name":"\u0007 ","to":"1"}],"security":1}
restart now: nobody logged in`
	rep, ok, err := parsePendingUpdates([]byte(check))
	if err != nil || !ok || rep.manager != "apt" || rep.after || rep.security != 1 || len(rep.updates) != 2 {
		t.Fatalf("check = %+v %v %v", rep, ok, err)
	}
	if u := rep.updates[0]; u.Name != "openssl" || u.Version != "3.0.15-1" || u.From != "3.0.11-1" || !u.Security || u.Category != "Debian-Security:12/stable-security" {
		t.Errorf("first = %+v", u)
	}
	// winget: no security count.
	if rep, ok, _ := parsePendingUpdates([]byte(`{"manager":"winget","pending":[]}`)); !ok || rep.security != -1 || len(rep.updates) != 0 {
		t.Errorf("winget = %+v %v", rep, ok)
	}
	// A fix: pending_after is stored; simulated or older fixes are not.
	rep, ok, err = parsePendingUpdates([]byte(`{"manager":"dnf","simulated":false,"packages":[],"pending_after":[{"name":"kernel","to":"5.14","categories":"Security Updates","security":true}],"security_after":1}`))
	if err != nil || !ok || !rep.after || rep.security != 1 || rep.updates[0].Category != "Security Updates" {
		t.Fatalf("fix = %+v %v %v", rep, ok, err)
	}
	for _, d := range []string{`{"manager":"dnf","simulated":true,"pending_after":[]}`, `{"manager":"dnf","simulated":false,"packages":[]}`, `{"cleared":3}`} {
		if _, ok, err := parsePendingUpdates([]byte(d)); ok || err != nil {
			t.Errorf("%s: ok %v err %v, want nothing stored", d, ok, err)
		}
	}
	if _, _, err := parsePendingUpdates([]byte("installed 3 updates")); err == nil || !strings.HasPrefix(err.Error(), "patchinstall details: ") {
		t.Errorf("text = %v", err)
	}
	if _, _, err := parsePendingUpdates([]byte(`{"manager":"apt","pending":{"a":1}}`)); err == nil || err.Error() != "patchinstall details: pending is a JSON object, not the plugin's shape" {
		t.Errorf("object = %v", err)
	}
}

func FuzzPendingUpdates(f *testing.F) {
	f.Add([]byte(`{"manager":"apt","pending":[{"name":"a","to":"1","security":true}],"security":1}`))
	f.Add([]byte(`{"manager":"zypper","simulated":false,"pending_after":[{"name":"p","to":"2","arch":"x86_64"}],"security_after":-4}`))
	f.Add([]byte(`{"manager":"` + strings.Repeat("é", 40) + `","pending":[{"name":"` + strings.Repeat("\x01x", 300) + `"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		rep, ok, err := parsePendingUpdates(b)
		if err != nil || !ok {
			return
		}
		if rep.security < -1 || len(rep.updates) > store.MaxPendingUpdates || rep.manager == "" {
			t.Fatalf("report out of bounds: %+v", rep)
		}
		seen := map[[2]string]bool{}
		for _, u := range rep.updates {
			for _, s := range []string{u.Name, u.Arch, u.From, u.Version, u.Category} {
				if !utf8.ValidString(s) || len(s) > maxUpdateCategory || strings.ContainsAny(s, "\x00\n\r\x7f") {
					t.Fatalf("field %q kept", s)
				}
			}
			if u.Name == "" || seen[[2]string{u.Name, u.Arch}] {
				t.Fatalf("empty or repeated name: %+v", u)
			}
			seen[[2]string{u.Name, u.Arch}] = true
		}
	})
}
