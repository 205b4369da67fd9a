//go:build linux

package main

import (
	"strings"
	"testing"
	"time"
)

func TestParseXev(t *testing.T) {
	out := `
CreateNotify event, serial 18, synthetic NO, window 0x50d,
    parent 0x50d, window 0x400001, (10,10), width 10, height 10
border_width 0, override NO

MapNotify event, serial 19, synthetic NO, window 0x50d,
    event 0x50d, window 0x400008, override NO

MapNotify event, serial 19, synthetic NO, window 0x50d,
    event 0x50d, window 0x400003, override YES

UnmapNotify event, serial 20, synthetic NO, window 0x50d,
    event 0x50d, window 0x400008, from_configure NO

DestroyNotify event, serial 20, synthetic NO, window 0x50d,
    event 0x50d, window 0x400008
`
	var got []xEvent
	if err := parseXev(strings.NewReader(out), time.Now, func(e xEvent) { got = append(got, e) }); err != nil {
		t.Fatal(err)
	}
	want := []xEvent{{kind: "MapNotify", win: "4194312"}, {kind: "MapNotify", win: "4194307", override: true},
		{kind: "UnmapNotify", win: "4194312"}, {kind: "DestroyNotify", win: "4194312"}}
	if len(got) != len(want) {
		t.Fatalf("got %d events %+v, want %d", len(got), got, len(want))
	}
	for i, w := range want {
		if g := got[i]; g.kind != w.kind || g.win != w.win || g.override != w.override || g.at.IsZero() {
			t.Errorf("event %d: got %+v, want %+v", i, g, w)
		}
	}
}
