package wire

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func gz(t testing.TB, s string) []byte {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write([]byte(s))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestSoftwareRoundTrip(t *testing.T) {
	in := []Package{{"zsh", "5.9-4", "dpkg"}, {"openssl", "3.0.13-1~deb12u1", "dpkg"}, {"zsh", "5.9-4", "dpkg"}}
	r, err := EncodeSoftware(in)
	if err != nil {
		t.Fatal(err)
	}
	if r.Count != 2 {
		t.Fatalf("count %d, want 2 (duplicates dropped)", r.Count)
	}
	env, err := NewEnvelope(MsgSoftware, "", r)
	if err != nil {
		t.Fatal(err)
	}
	var back SoftwareReport
	if err := DecodeBody(env, &back); err != nil {
		t.Fatal(err)
	}
	p, err := DecodeSoftware(back)
	if err != nil {
		t.Fatal(err)
	}
	if len(p) != 2 || p[0].Name != "openssl" || p[1].Name != "zsh" {
		t.Fatalf("packages %v", p)
	}
	empty, _ := EncodeSoftware(nil)
	if p, err := DecodeSoftware(empty); err != nil || p == nil || len(p) != 0 {
		t.Fatalf("empty list: %v, %v", p, err)
	}
}

func TestSoftwareRefused(t *testing.T) {
	good, _ := EncodeSoftware([]Package{{"a", "1", "dpkg"}})
	many := make([]Package, MaxPackages+1)
	for i := range many {
		many[i] = Package{Name: fmt.Sprintf("p%d", i), Version: "1"}
	}
	if _, err := EncodeSoftware(many); err == nil {
		t.Error("encoding more than MaxPackages should fail")
	}
	long := `[{"name":"` + strings.Repeat("x", MaxPackageName+1) + `","version":"1"}]`
	bomb := gz(t, "["+strings.Repeat(" ", maxSoftwareJSON+10)+"]")
	cases := map[string]struct {
		r    SoftwareReport
		want string
	}{
		"count":      {SoftwareReport{Hash: good.Hash, Count: MaxPackages + 1, Gzip: good.Gzip}, "at most 20000"},
		"hash":       {SoftwareReport{Hash: strings.Repeat("0", 64), Count: 1, Gzip: good.Gzip}, "does not match"},
		"not gzip":   {SoftwareReport{Hash: good.Hash, Count: 1, Gzip: []byte("plain")}, "not gzip"},
		"long name":  {SoftwareReport{Hash: good.Hash, Count: 1, Gzip: gz(t, long)}, "printable characters"},
		"bomb":       {SoftwareReport{Hash: good.Hash, Count: 1, Gzip: bomb}, "uncompressed"},
		"unknown":    {SoftwareReport{Hash: good.Hash, Count: 1, Gzip: gz(t, `[{"name":"a","version":"1","x":1}]`)}, "unknown field"},
		"miscounted": {SoftwareReport{Hash: good.Hash, Count: 2, Gzip: good.Gzip}, "count 2"},
		"control":    {SoftwareReport{Hash: good.Hash, Count: 1, Gzip: gz(t, `[{"name":"a\nb","version":"1"}]`)}, "printable"},
	}
	for name, c := range cases {
		_, err := DecodeSoftware(c.r)
		if err == nil || !errors.Is(err, ErrSoftwareReport) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want one containing %q", name, err, c.want)
		}
	}
}

func TestHardwareValidate(t *testing.T) {
	h := Hardware{CPUModel: "Xeon", CPUCount: 8, MemoryBytes: 8 << 30, Disks: []Disk{{"/", 100, 10}}}
	inv := Inventory{Hostname: "h", OS: "linux", Arch: "amd64", Hardware: &h}
	if err := inv.Validate(); err != nil {
		t.Fatal(err)
	}
	h.Disks[0].Free = 200
	if err := inv.Validate(); err == nil {
		t.Error("free > size accepted")
	}
	h.Disks[0].Free = 1
	h.Serial = "a\x00b"
	if err := inv.Validate(); err == nil {
		t.Error("control character in serial accepted")
	}
}

// FuzzDecodeSoftware feeds untrusted software reports (the JSON body of a
// software message) to the relay's decoder.
func FuzzDecodeSoftware(f *testing.F) {
	good, _ := EncodeSoftware([]Package{{"openssl", "3.0.13", "dpkg"}, {"firefox", "128.0", "app"}})
	env, _ := NewEnvelope(MsgSoftware, "", good)
	f.Add([]byte(env.Body))
	f.Add([]byte(`{"hash":"","count":0,"gzip":""}`))
	f.Add([]byte(`{"hash":"00","count":-1,"gzip":"H4sI"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var r SoftwareReport
		if err := DecodeBody(Envelope{Type: MsgSoftware, Body: body}, &r); err != nil {
			return
		}
		p, err := DecodeSoftware(r)
		if err != nil {
			return
		}
		if len(p) > MaxPackages || SoftwareHash(p) != r.Hash {
			t.Fatalf("accepted %d packages with hash %s", len(p), r.Hash)
		}
		for _, pk := range p {
			if ValidPackage(pk) != nil {
				t.Fatalf("accepted invalid package %q", pk)
			}
		}
	})
}
