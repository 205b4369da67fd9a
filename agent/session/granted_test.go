package session

import (
	"slices"
	"testing"

	"github.com/patchbay/patchbay/agent/consent"
	"github.com/patchbay/patchbay/internal/wire"
)

func TestViewOnlyChoiceGrantsDesktopView(t *testing.T) {
	for _, tc := range []struct {
		asked  []string
		choice string
		want   []string
	}{
		{[]string{wire.CapShell, wire.CapDesktop}, "", []string{wire.CapShell, wire.CapDesktop}},
		{[]string{wire.CapShell, wire.CapDesktop}, consent.ChoiceViewOnly, []string{wire.CapShell, wire.CapDesktopView}},
		{[]string{wire.CapDesktop, wire.CapDesktopView}, consent.ChoiceViewOnly, []string{wire.CapDesktopView}},
		{[]string{wire.CapExec}, consent.ChoiceViewOnly, []string{wire.CapExec}},
	} {
		if got := granted(tc.asked, tc.choice); !slices.Equal(got, tc.want) {
			t.Errorf("granted(%v, %q) = %v, want %v", tc.asked, tc.choice, got, tc.want)
		}
	}
}
