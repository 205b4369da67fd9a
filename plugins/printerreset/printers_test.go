package main

import (
	"reflect"
	"testing"
)

func TestPausedPrinters(t *testing.T) {
	ps := []winPrinter{
		{Name: "Office HP", Status: printerStatusPaused},
		{Name: "Label", Status: 0},
		{Name: "Old", Status: printerStatusPaused | printerStatusPendingDeletion},
		{Name: "Accounts", Status: printerStatusPaused | printerStatusOffline},
		{Name: "Jammed", Status: printerStatusPaperJam | printerStatusError},
	}
	if got, want := pausedPrinters(ps), []string{"Accounts", "Office HP"}; !reflect.DeepEqual(got, want) {
		t.Errorf("pausedPrinters = %q, want %q", got, want)
	}
	if got := pausedPrinters(nil); got != nil {
		t.Errorf("pausedPrinters(nil) = %q", got)
	}
}

func TestDescribeStatus(t *testing.T) {
	got := describeStatus(printerStatusPaused | printerStatusOffline | 0x4000_0000)
	if want := []string{"paused", "offline"}; !reflect.DeepEqual(got, want) {
		t.Errorf("describeStatus = %q, want %q", got, want)
	}
	if got := describeStatus(0); got != nil {
		t.Errorf("describeStatus(0) = %q", got)
	}
}

func TestPrinterProblems(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want []string
	}{
		{nil, nil},
		{[]string{"A"}, []string{"printer A paused"}},
		{[]string{"A", "B"}, []string{"printer A, B paused"}},
		{[]string{"A", "B", "C", "D"}, []string{"4 printers paused"}},
	} {
		if got := printerProblems(tc.in); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("printerProblems(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
