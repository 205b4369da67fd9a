package version

import "testing"

func TestFull(t *testing.T) {
	if got := Full("1.2.3"); got != "1.2.3" {
		t.Errorf("Full(1.2.3) = %q", got)
	}
	if got := Full("dev"); got != "dev" && len(got) != len("dev+0123456789ab") {
		t.Errorf("Full(dev) = %q, want dev or dev+<12 hex digits>", got)
	}
}
