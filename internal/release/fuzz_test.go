package release

import (
	"bytes"
	"testing"
)

// FuzzParse: any bytes either parse into a manifest that marshals and parses
// back to the same files, or are refused; never a panic.
func FuzzParse(f *testing.F) {
	f.Add([]byte(sumA + "  patchbay-agent_v1_linux_amd64\n"))
	f.Add([]byte(sumA + " *a\n" + sumB + "  b"))
	f.Add([]byte("junk"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Parse(b)
		if err != nil {
			return
		}
		again, err := Parse(m.Marshal())
		if err != nil {
			t.Fatalf("marshalled manifest does not parse: %v", err)
		}
		if !bytes.Equal(again.Marshal(), m.Marshal()) {
			t.Fatal("round trip changed the manifest")
		}
	})
}
