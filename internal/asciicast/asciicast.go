// Package asciicast writes and parses terminal recordings in asciicast v2, the
// format asciinema plays (https://docs.asciinema.org/manual/asciicast/v2/).
//
// A recording is a JSON header line followed by one JSON array per event:
//
//	{"version":2,"width":80,"height":24,"timestamp":1700000000,"env":{"TERM":"xterm"},"title":"..."}
//	[0.248848, "o", "hello\r\n"]
//	[1.001343, "i", "ls\r"]
//	[2.5, "r", "100x40"]
//	[3.0, "m", "marker label"]
//
// Times are seconds since the start of the recording and never decrease. Event
// data is valid UTF-8: the Writer carries a multi-byte character split across
// two writes over to the next event, and replaces bytes that can never be
// UTF-8 with U+FFFD. Long writes are split into several events so that no line
// exceeds MaxLineSize, the limit Parse enforces on recordings it receives from
// agents (untrusted input).
package asciicast

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// Event types.
const (
	TypeOutput = "o" // what the terminal printed
	TypeInput  = "i" // what the user typed
	TypeResize = "r" // the terminal was resized; data "WIDTHxHEIGHT"
	TypeMarker = "m" // a marker (chapter) with a label
)

// Limits.
const (
	// MaxLineSize bounds one line (header or event) of a recording, newline excluded.
	MaxLineSize = 1 << 20
	// MaxDimension bounds the width and height of a terminal.
	MaxDimension = 10000
	// maxChunk is the most data bytes one event carries; JSON escaping grows
	// a byte to at most 6 ("\u001b"), so an event line stays far below MaxLineSize.
	maxChunk = 64 << 10
)

// Header is the first line of a recording.
type Header struct {
	Version   int               `json:"version"`
	Width     int               `json:"width"`
	Height    int               `json:"height"`
	Timestamp int64             `json:"timestamp,omitempty"` // start, Unix seconds
	Title     string            `json:"title,omitempty"`
	Env       map[string]string `json:"env,omitempty"` // TERM and SHELL, by convention
}

// Event is one line after the header.
type Event struct {
	Time float64 // seconds since the start
	Type string  // TypeOutput, TypeInput, TypeResize or TypeMarker
	Data string
}

func (h *Header) validate() error {
	if h.Version != 2 {
		return fmt.Errorf("version %d, want 2", h.Version)
	}
	if h.Width < 1 || h.Width > MaxDimension || h.Height < 1 || h.Height > MaxDimension {
		return fmt.Errorf("terminal size %dx%d out of range (1-%d)", h.Width, h.Height, MaxDimension)
	}
	if h.Timestamp < 0 {
		return fmt.Errorf("negative timestamp %d", h.Timestamp)
	}
	return nil
}

// Writer writes a recording. Its methods are safe for concurrent use: terminal
// output and user input typically come from different goroutines. Event times
// are taken under the Writer's lock, so they never decrease in the file.
type Writer struct {
	mu      sync.Mutex
	w       io.Writer
	start   time.Time
	now     func() time.Time // time.Now; tests may replace it
	err     error            // the first write error; every later call returns it
	carry   [2][]byte        // incomplete UTF-8 sequences at the end of the last output [0] and input [1]
	lastSec float64
	buf     []byte
}

// NewWriter writes h's header line to w and returns a Writer whose event times
// are measured from start. h.Version 0 means 2; Width and Height must be 1-10000.
func NewWriter(w io.Writer, h Header, start time.Time) (*Writer, error) {
	if h.Version == 0 {
		h.Version = 2
	}
	if err := h.validate(); err != nil {
		return nil, fmt.Errorf("asciicast header: %w", err)
	}
	var line bytes.Buffer
	enc := json.NewEncoder(&line)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(h); err != nil { // one line, "\n" included
		return nil, fmt.Errorf("asciicast header: %w", err)
	}
	if line.Len() > MaxLineSize {
		return nil, fmt.Errorf("asciicast header: %d bytes (limit %d)", line.Len(), MaxLineSize)
	}
	if _, err := w.Write(line.Bytes()); err != nil {
		return nil, fmt.Errorf("asciicast header: %w", err)
	}
	return &Writer{w: w, start: start, now: time.Now}, nil
}

// Output records what the terminal printed.
func (w *Writer) Output(p []byte) error { return w.stream(0, TypeOutput, p) }

// Input records what the user typed. Passwords typed at a prompt are included:
// the terminal does not echo them, but they pass through as input.
func (w *Writer) Input(p []byte) error { return w.stream(1, TypeInput, p) }

// Resize records a new terminal size.
func (w *Writer) Resize(width, height int) error {
	if width < 1 || width > MaxDimension || height < 1 || height > MaxDimension {
		return fmt.Errorf("asciicast resize: size %dx%d out of range (1-%d)", width, height, MaxDimension)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.event(TypeResize, []byte(strconv.Itoa(width)+"x"+strconv.Itoa(height)))
}

// Marker records a marker (a chapter point in players) with a label.
func (w *Writer) Marker(label string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(label) > maxChunk {
		label = label[:maxChunk]
	}
	return w.event(TypeMarker, []byte(label))
}

// Close writes out any incomplete UTF-8 sequence still held back (as U+FFFD).
// It does not close the underlying writer. Later calls fail.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for i, typ := range []string{TypeOutput, TypeInput} {
		if len(w.carry[i]) > 0 {
			c := w.carry[i]
			w.carry[i] = nil
			if err := w.event(typ, c); err != nil {
				return err
			}
		}
	}
	if w.err == nil {
		w.err = errors.New("asciicast: writer closed")
	}
	return nil
}

// stream records p as events of type typ, holding back a trailing incomplete
// UTF-8 sequence until the next call for the same stream.
func (w *Writer) stream(idx int, typ string, p []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	data := p
	if c := w.carry[idx]; len(c) > 0 {
		data = append(append(make([]byte, 0, len(c)+len(p)), c...), p...)
		w.carry[idx] = nil
	}
	if n := incompleteSuffix(data); n > 0 {
		w.carry[idx] = append([]byte(nil), data[len(data)-n:]...)
		data = data[:len(data)-n]
	}
	for len(data) > 0 {
		n := min(len(data), maxChunk)
		if n < len(data) {
			// Cut at a character boundary (at most 3 bytes back).
			for k := n; k > n-utf8.UTFMax && k > 0; k-- {
				if utf8.RuneStart(data[k]) {
					n = k
					break
				}
			}
		}
		if err := w.event(typ, data[:n]); err != nil {
			return err
		}
		data = data[n:]
	}
	return nil
}

// incompleteSuffix returns the length of a UTF-8 sequence at the end of p
// that has begun but is not complete yet (0-3).
func incompleteSuffix(p []byte) int {
	for k := 1; k < utf8.UTFMax && k <= len(p); k++ {
		if utf8.RuneStart(p[len(p)-k]) {
			if !utf8.FullRune(p[len(p)-k:]) {
				return k
			}
			return 0
		}
	}
	return 0
}

// event writes one event line; the caller holds w.mu.
func (w *Writer) event(typ string, data []byte) error {
	if w.err != nil {
		return w.err
	}
	sec := w.now().Sub(w.start).Seconds()
	if sec < w.lastSec || math.IsNaN(sec) {
		sec = w.lastSec
	}
	w.lastSec = sec
	w.buf = appendEvent(w.buf[:0], sec, typ, data)
	if _, err := w.w.Write(w.buf); err != nil {
		w.err = fmt.Errorf("asciicast: write: %w", err)
		return w.err
	}
	if cap(w.buf) > 4*maxChunk {
		w.buf = nil // do not keep a rare huge buffer
	}
	return nil
}

// appendEvent appends `[sec, "typ", "data"]\n` to b, with data as a JSON
// string (invalid UTF-8 replaced by U+FFFD).
func appendEvent(b []byte, sec float64, typ string, data []byte) []byte {
	b = append(b, '[')
	b = strconv.AppendFloat(b, sec, 'f', 6, 64)
	b = append(b, ", "...)
	b = strconv.AppendQuote(b, typ)
	b = append(b, ", "...)
	b = appendJSONString(b, data)
	return append(b, "]\n"...)
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends data as a JSON string. Control characters, quotes
// and backslashes are escaped; invalid UTF-8 becomes U+FFFD; everything else is
// copied (unlike encoding/json, < > & are not escaped: this is not HTML).
func appendJSONString(b, data []byte) []byte {
	b = append(b, '"')
	for i := 0; i < len(data); {
		c := data[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20 || c == 0x7f:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(data[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, "\ufffd"...)
		case r == '\u2028' || r == '\u2029': // valid JSON, but not in JavaScript strings
			b = append(b, `\u202`...)
			b = append(b, hexDigits[r&0xF])
		default:
			b = append(b, data[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}

var resizeData = regexp.MustCompile(`^([1-9][0-9]{0,4})x([1-9][0-9]{0,4})$`)

// Parse reads a recording, checks its header, and calls each (if not nil) for
// every event in order. It is strict, since recordings come from agents: a
// header that is not asciicast v2 with a sane terminal size, an event that is
// not [time, type, data] with a known type, a time that is negative, not finite
// or smaller than the previous one, a bad resize, a blank line before the end,
// or a line over MaxLineSize are errors naming the line number. An error from
// each stops the parse and is returned.
func Parse(r io.Reader, each func(Event) error) (Header, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var h Header
	line, lineNo := []byte(nil), 0
	var err error
	next := func() ([]byte, error) {
		lineNo++
		return readLine(br, line[:0])
	}

	if line, err = next(); err != nil {
		if err == io.EOF {
			return h, errors.New("asciicast: line 1: empty recording, want a header")
		}
		return h, fmt.Errorf("asciicast: line 1: %w", err)
	}
	if err := decodeStrict(line, &h); err != nil {
		return h, fmt.Errorf("asciicast: line 1: header: %w", err)
	}
	if err := h.validate(); err != nil {
		return h, fmt.Errorf("asciicast: line 1: header: %w", err)
	}

	last := 0.0
	blankAt := 0
	for {
		if line, err = next(); err != nil {
			if err == io.EOF {
				return h, nil
			}
			return h, fmt.Errorf("asciicast: line %d: %w", lineNo, err)
		}
		if len(line) == 0 {
			if blankAt == 0 {
				blankAt = lineNo
			}
			continue
		}
		if blankAt != 0 {
			return h, fmt.Errorf("asciicast: line %d: blank line inside the recording", blankAt)
		}
		ev, err := parseEvent(line)
		if err != nil {
			return h, fmt.Errorf("asciicast: line %d: %w", lineNo, err)
		}
		if ev.Time < last {
			return h, fmt.Errorf("asciicast: line %d: time %g is before the previous event's %g", lineNo, ev.Time, last)
		}
		last = ev.Time
		if each != nil {
			if err := each(ev); err != nil {
				return h, err
			}
		}
	}
}

// readLine reads one line without its "\n" (or "\r\n") into buf, refusing
// lines over MaxLineSize. It returns io.EOF only when nothing is left.
func readLine(br *bufio.Reader, buf []byte) ([]byte, error) {
	for {
		frag, err := br.ReadSlice('\n')
		buf = append(buf, frag...)
		switch {
		case err == bufio.ErrBufferFull:
			if len(buf) > MaxLineSize+1 {
				return nil, fmt.Errorf("line longer than %d bytes", MaxLineSize)
			}
			continue
		case err == io.EOF && len(buf) == 0:
			return nil, io.EOF
		case err != nil && err != io.EOF:
			return nil, err
		}
		buf = bytes.TrimSuffix(bytes.TrimSuffix(buf, []byte("\n")), []byte("\r"))
		if len(buf) > MaxLineSize {
			return nil, fmt.Errorf("line longer than %d bytes", MaxLineSize)
		}
		return buf, nil
	}
}

// decodeStrict decodes exactly one JSON value into v.
func decodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("data after the JSON value")
	}
	return nil
}

func parseEvent(line []byte) (Event, error) {
	var raw []json.RawMessage
	if len(line) == 0 || line[0] != '[' {
		return Event{}, errors.New("event is not a JSON array")
	}
	if err := decodeStrict(line, &raw); err != nil {
		return Event{}, fmt.Errorf("event: %w", err)
	}
	if len(raw) != 3 {
		return Event{}, fmt.Errorf("event has %d elements, want [time, type, data]", len(raw))
	}
	var ev Event
	// encoding/json leaves a target untouched for null and takes a quoted
	// number for a json.Number: check the kind of each element first.
	if raw[0][0] != '-' && (raw[0][0] < '0' || raw[0][0] > '9') {
		return Event{}, fmt.Errorf("event time %.40s is not a number", raw[0])
	}
	if err := decodeStrict(raw[0], &ev.Time); err != nil {
		return Event{}, fmt.Errorf("event time: %w", err)
	}
	if math.IsInf(ev.Time, 0) || math.IsNaN(ev.Time) || ev.Time < 0 {
		return Event{}, fmt.Errorf("event time %g is not a finite number >= 0", ev.Time)
	}
	if raw[1][0] != '"' || raw[2][0] != '"' {
		return Event{}, errors.New("event type and data must be strings")
	}
	if err := decodeStrict(raw[1], &ev.Type); err != nil {
		return Event{}, fmt.Errorf("event type: %w", err)
	}
	switch ev.Type {
	case TypeOutput, TypeInput, TypeResize, TypeMarker:
	default:
		return Event{}, fmt.Errorf("unknown event type %q", ev.Type)
	}
	if err := decodeStrict(raw[2], &ev.Data); err != nil {
		return Event{}, fmt.Errorf("event data: %w", err)
	}
	if ev.Type == TypeResize {
		m := resizeData.FindStringSubmatch(ev.Data)
		if m == nil {
			return Event{}, fmt.Errorf("resize %q, want WIDTHxHEIGHT", ev.Data)
		}
		w, _ := strconv.Atoi(m[1])
		h, _ := strconv.Atoi(m[2])
		if w > MaxDimension || h > MaxDimension {
			return Event{}, fmt.Errorf("resize %q out of range (1-%d)", ev.Data, MaxDimension)
		}
	}
	return ev, nil
}
