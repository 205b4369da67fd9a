package syslogtest

import (
	"bufio"
	"strings"
	"testing"
)

func TestParseRefuses(t *testing.T) {
	good := `<109>1 2026-05-01T10:00:00.123456Z relay patchbay 42 login [a@1 k="v\]\"\\"][b x="y"] ` + "\uFEFFtext"
	m, err := Parse([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if e, _ := m.Element("a@1"); e.Params[0].Value != `v]"\` || m.Msg != "text" || !m.HasBOM {
		t.Errorf("%+v", m)
	}
	for _, bad := range []string{
		`<192>1 - h a p m -`,                                    // PRI too large
		`<01>1 - h a p m -`,                                     // leading zero
		`<1>2 - h a p m -`,                                      // VERSION
		`<1>1 2026-05-01T10:00:00.1234567Z h a p m -`,           // 7 fraction digits
		`<1>1 2026-05-01 10:00:00Z h a p m -`,                   // not RFC 5424
		`<1>1 - h ` + strings.Repeat("a", 49) + ` p m -`,        // APP-NAME too long
		`<1>1 - h a p ` + strings.Repeat("m", 33) + ` -`,        // MSGID too long
		`<1>1 - h a p m [x k="a]b"]`,                            // unescaped ]
		`<1>1 - h a p m [x k="a\b"]`,                            // lone backslash
		`<1>1 - h a p m [x k="v"][x k="w"]`,                     // SD-ID twice
		`<1>1 - h a p m [` + strings.Repeat("x", 33) + ` k=""]`, // SD-ID too long
		`<1>1 - h a p m [x k="v"`,                               // not closed
		"<1>1 - h a p m - \uFEFF\xff",                           // BOM, bad UTF-8
		`<1>1 - h a p m`,                                        // no SD
	} {
		if _, err := Parse([]byte(bad)); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
	for _, bad := range []string{"07 <1>1 x", "x", "5 <1>1", "99999999 x"} {
		if _, err := ReadFrame(bufio.NewReader(strings.NewReader(bad))); err == nil {
			t.Errorf("frame accepted %q", bad)
		}
	}
}

// FuzzParse: the receiver never panics on what arrives.
func FuzzParse(f *testing.F) {
	f.Add([]byte(`20 <109>1 - h a p m -`))
	f.Add([]byte(`<1>1 - h a p m [x k="a\]"] msg`))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = Parse(b)
		_, _ = ReadFrame(bufio.NewReader(strings.NewReader(string(b))))
	})
}
