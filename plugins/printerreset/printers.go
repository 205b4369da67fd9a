package main

// Paused printers on Windows: which ones to resume. No build tag, so the
// decision is tested on every OS; printers_windows.go reads the printers
// (EnumPrinters level 2) and resumes them (SetPrinter PRINTER_CONTROL_RESUME).

import (
	"fmt"
	"sort"
	"strings"
)

// PRINTER_STATUS_* bits of PRINTER_INFO_2.Status.
const (
	printerStatusPaused          = 0x0000_0001
	printerStatusError           = 0x0000_0002
	printerStatusPendingDeletion = 0x0000_0004
	printerStatusPaperJam        = 0x0000_0008
	printerStatusPaperOut        = 0x0000_0010
	printerStatusOffline         = 0x0000_0080
	printerStatusNotAvailable    = 0x0000_1000
)

// winPrinter is a local printer as EnumPrinters reports it.
type winPrinter struct {
	Name   string   `json:"name"`
	Status uint32   `json:"status"`
	States []string `json:"states,omitempty"` // Status in words
	Jobs   uint32   `json:"jobs"`
}

var statusWords = []struct {
	bit  uint32
	word string
}{
	{printerStatusPaused, "paused"},
	{printerStatusError, "error"},
	{printerStatusPendingDeletion, "being deleted"},
	{printerStatusPaperJam, "paper jam"},
	{printerStatusPaperOut, "out of paper"},
	{printerStatusOffline, "offline"},
	{printerStatusNotAvailable, "not available"},
}

// describeStatus names the status bits the plugin knows.
func describeStatus(status uint32) []string {
	var w []string
	for _, s := range statusWords {
		if status&s.bit != 0 {
			w = append(w, s.word)
		}
	}
	return w
}

// pausedPrinters are the printers Fix resumes: paused, and not being
// deleted (resuming a printer on its way out only holds up its deletion).
// Sorted by name.
func pausedPrinters(ps []winPrinter) []string {
	var names []string
	for _, p := range ps {
		if p.Status&printerStatusPaused != 0 && p.Status&printerStatusPendingDeletion == 0 {
			names = append(names, p.Name)
		}
	}
	sort.Strings(names)
	return names
}

// printerProblems is the Check summary's part for paused printers.
func printerProblems(paused []string) []string {
	switch n := len(paused); {
	case n == 0:
		return nil
	case n <= 3:
		return []string{"printer " + strings.Join(paused, ", ") + " paused"}
	default:
		return []string{fmt.Sprintf("%d printers paused", n)}
	}
}
