package audit

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Export formats: one JSON object per line, exactly as the API serves a
// record (hashes included, so an unfiltered export verifies offline), or
// CSV with a header for spreadsheets.
const (
	FormatJSONL = "jsonl"
	FormatCSV   = "csv"
)

// CSVHeader names the CSV columns.
var CSVHeader = []string{"seq", "time", "actor", "action", "target", "detail", "prev_hash", "hash"}

// Exporter writes records in one export format. CSV cells that a
// spreadsheet would run as a formula (text starting with = + - @, a tab or
// a carriage return) get a leading ' (OWASP's advice on CSV injection); the
// detail column is the details as a JSON object. Flush writes what is
// buffered (and the CSV header of an empty export).
type Exporter struct {
	jsonl  *json.Encoder
	csv    *csv.Writer
	header bool
}

// NewExporter returns an Exporter for format (FormatCSV or FormatJSONL).
func NewExporter(w io.Writer, format string) (*Exporter, error) {
	switch format {
	case FormatCSV:
		return &Exporter{csv: csv.NewWriter(w)}, nil
	case FormatJSONL:
		return &Exporter{jsonl: json.NewEncoder(w)}, nil
	}
	return nil, fmt.Errorf("export format %q: want csv or jsonl", format)
}

// Write writes one record.
func (e *Exporter) Write(r Record) error {
	if e.jsonl != nil {
		if err := e.jsonl.Encode(r); err != nil {
			return fmt.Errorf("write the export: %w", err)
		}
		return nil
	}
	if err := e.writeHeader(); err != nil {
		return err
	}
	detail := "{}"
	if len(r.Detail) > 0 {
		b, err := json.Marshal(r.Detail)
		if err != nil {
			return fmt.Errorf("encode record %d: %w", r.Seq, err)
		}
		detail = string(b)
	}
	row := []string{strconv.FormatInt(r.Seq, 10), r.Time.UTC().Format(time.RFC3339Nano),
		csvText(r.Actor), csvText(r.Action), csvText(r.Target), csvText(detail), r.PrevHash, r.Hash}
	if err := e.csv.Write(row); err != nil {
		return fmt.Errorf("write the export: %w", err)
	}
	return nil
}

func (e *Exporter) writeHeader() error {
	if e.header {
		return nil
	}
	e.header = true
	if err := e.csv.Write(CSVHeader); err != nil {
		return fmt.Errorf("write the export: %w", err)
	}
	return nil
}

// Flush writes what is buffered.
func (e *Exporter) Flush() error {
	if e.csv == nil {
		return nil
	}
	if err := e.writeHeader(); err != nil {
		return err
	}
	e.csv.Flush()
	if err := e.csv.Error(); err != nil {
		return fmt.Errorf("write the export: %w", err)
	}
	return nil
}

func csvText(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}
