package asciicast

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/creack/pty"

	"github.com/patchbay/patchbay/internal/testtool"
)

func parseAll(t *testing.T, data []byte) (Header, []Event) {
	t.Helper()
	var evs []Event
	h, err := Parse(bytes.NewReader(data), func(e Event) error {
		evs = append(evs, e)
		return nil
	})
	if err != nil {
		t.Fatalf("Parse: %v\n%s", err, data)
	}
	return h, evs
}

// joined concatenates the data of the events of one type.
func joined(evs []Event, typ string) string {
	var b strings.Builder
	for _, e := range evs {
		if e.Type == typ {
			b.WriteString(e.Data)
		}
	}
	return b.String()
}

func TestWriterRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	start := time.Unix(1700000000, 0)
	h := Header{Width: 80, Height: 24, Timestamp: start.Unix(), Title: "t <1> & \"q\"", Env: map[string]string{"TERM": "xterm-256color", "SHELL": "/bin/bash"}}
	w, err := NewWriter(&buf, h, start)
	if err != nil {
		t.Fatal(err)
	}
	clock := start
	w.now = func() time.Time { clock = clock.Add(250 * time.Millisecond); return clock }
	steps := []func() error{
		func() error { return w.Output([]byte("$ ")) },
		func() error { return w.Input([]byte("echo hi\r")) },
		func() error { return w.Output([]byte("hi\r\n\x1b[1mbold\x1b[0m \"q\" \\ \t\u2028")) },
		func() error { return w.Resize(120, 40) },
		func() error { return w.Marker("step 1") },
	}
	for _, s := range steps {
		if err := s(); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Output([]byte("x")); err == nil {
		t.Error("Output after Close succeeded")
	}
	if !strings.HasPrefix(buf.String(), `{"version":2,"width":80,"height":24,"timestamp":1700000000,"title":"t <1> & \"q\"","env":{`) {
		t.Errorf("header line: %s", strings.SplitN(buf.String(), "\n", 2)[0])
	}
	if !strings.Contains(buf.String(), "\n[0.250000, \"o\", \"$ \"]\n") {
		t.Errorf("first event line not as expected:\n%s", buf.String())
	}
	got, evs := parseAll(t, buf.Bytes())
	if got.Version != 2 || got.Width != 80 || got.Height != 24 || got.Title != h.Title || got.Env["TERM"] != "xterm-256color" || got.Timestamp != start.Unix() {
		t.Errorf("header %+v", got)
	}
	want := []Event{
		{0.25, "o", "$ "},
		{0.5, "i", "echo hi\r"},
		{0.75, "o", "hi\r\n\x1b[1mbold\x1b[0m \"q\" \\ \t\u2028"},
		{1.0, "r", "120x40"},
		{1.25, "m", "step 1"},
	}
	if fmt.Sprint(evs) != fmt.Sprint(want) {
		t.Errorf("events\n got %v\nwant %v", evs, want)
	}
}

func TestWriterUTF8(t *testing.T) {
	var buf bytes.Buffer
	w, err := NewWriter(&buf, Header{Width: 10, Height: 5}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	text := "héllo → 世界 🎉 done"
	// Feed the text one byte at a time: every multi-byte character is split.
	for i := 0; i < len(text); i++ {
		if err := w.Output([]byte{text[i]}); err != nil {
			t.Fatal(err)
		}
		if err := w.Input([]byte{text[i]}); err != nil {
			t.Fatal(err)
		}
	}
	// Invalid bytes that can never be UTF-8, and a sequence cut off by Close.
	if err := w.Output([]byte("a\xffb\xc3")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if !utf8.Valid(buf.Bytes()) {
		t.Error("recording is not valid UTF-8")
	}
	_, evs := parseAll(t, buf.Bytes())
	if got := joined(evs, "o"); got != text+"a\ufffdb\ufffd" {
		t.Errorf("output %q", got)
	}
	if got := joined(evs, "i"); got != text {
		t.Errorf("input %q", got)
	}
	for _, e := range evs {
		if strings.ContainsRune(e.Data, utf8.RuneError) && !strings.HasPrefix(e.Data, "a") && e.Data != "\ufffd" {
			t.Errorf("mangled event %q", e.Data)
		}
	}
}

func TestIncompleteSuffix(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
	}{
		{"", 0}, {"abc", 0}, {"é", 0}, {"\xc3", 1}, {"a\xe4\xb8", 2}, {"\xf0\x9f\x8e", 3},
		{"\xf0\x9f\x8e\x89", 0}, {"\xff", 0}, {"\x80", 0}, {"a\x80\x80\x80", 0}, {"\xc3\x28", 0},
	} {
		if got := incompleteSuffix([]byte(tc.in)); got != tc.want {
			t.Errorf("incompleteSuffix(%q) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

func TestWriterSplitsLargeOutput(t *testing.T) {
	var buf bytes.Buffer
	w, err := NewWriter(&buf, Header{Width: 80, Height: 24}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	// 3 MiB of escapes (each byte grows to 6 in JSON) and multi-byte characters.
	big := bytes.Repeat([]byte("\x01é世"), 3<<20/6)
	if err := w.Output(big); err != nil {
		t.Fatal(err)
	}
	for i, line := range bytes.Split(buf.Bytes(), []byte("\n")) {
		if len(line) > MaxLineSize {
			t.Fatalf("line %d has %d bytes", i+1, len(line))
		}
	}
	_, evs := parseAll(t, buf.Bytes())
	if len(evs) < 2 {
		t.Errorf("%d events, want the output split", len(evs))
	}
	if joined(evs, "o") != string(big) {
		t.Error("split output does not join back")
	}
}

func TestWriterConcurrent(t *testing.T) {
	var buf bytes.Buffer
	w, err := NewWriter(&buf, Header{Width: 80, Height: 24}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for _, f := range []func([]byte) error{w.Output, w.Input} {
		wg.Go(func() {
			for range 500 {
				if err := f([]byte("ü\xe4")); err != nil { // each write ends mid-character
					t.Error(err)
					return
				}
				if err := f([]byte("\xb8\x96")); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Go(func() {
		for i := range 100 {
			if err := w.Resize(80+i, 24); err != nil {
				t.Error(err)
			}
		}
	})
	wg.Wait()
	_, evs := parseAll(t, buf.Bytes())
	want := strings.Repeat("ü世", 500)
	if joined(evs, "o") != want || joined(evs, "i") != want {
		t.Error("concurrent streams were mixed or mangled")
	}
}

type failWriter struct{ n int }

func (f *failWriter) Write(p []byte) (int, error) {
	if f.n--; f.n < 0 {
		return 0, errors.New("disk full")
	}
	return len(p), nil
}

func TestWriterErrors(t *testing.T) {
	if _, err := NewWriter(&failWriter{}, Header{Width: 80, Height: 24}, time.Now()); err == nil {
		t.Error("header write error not reported")
	}
	for _, h := range []Header{{Width: 0, Height: 24}, {Width: 80, Height: 100000}, {Version: 1, Width: 80, Height: 24}} {
		if _, err := NewWriter(&bytes.Buffer{}, h, time.Now()); err == nil {
			t.Errorf("header %+v accepted", h)
		}
	}
	w, err := NewWriter(&failWriter{n: 1}, Header{Width: 80, Height: 24}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Output([]byte("x")); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("Output: %v", err)
	}
	if err := w.Input([]byte("x")); err == nil {
		t.Error("write after a failure succeeded")
	}
	if err := w.Resize(0, 5); err == nil {
		t.Error("resize 0x5 accepted")
	}
}

func TestParseErrors(t *testing.T) {
	const hdr = `{"version":2,"width":80,"height":24}` + "\n"
	long := `[1, "o", "` + strings.Repeat("a", MaxLineSize) + `"]`
	for _, tc := range []struct{ name, in, want string }{
		{"empty", "", "line 1: empty recording"},
		{"not json", "hello\n", "line 1: header"},
		{"version 1", `{"version":1,"width":80,"height":24}`, "line 1: header: version 1"},
		{"no size", `{"version":2}`, "line 1: header: terminal size"},
		{"huge size", `{"version":2,"width":80,"height":1000000}`, "line 1: header: terminal size"},
		{"header array", `[2,80,24]`, "line 1: header"},
		{"trailing data", `{"version":2,"width":80,"height":24} {}`, "line 1: header: data after"},
		{"event object", hdr + `{"t":1}`, "line 2: event is not a JSON array"},
		{"two elements", hdr + `[1, "o"]`, "line 2: event has 2 elements"},
		{"four elements", hdr + `[1, "o", "x", 4]`, "line 2: event has 4 elements"},
		{"string time", hdr + `["1", "o", "x"]`, "line 2: event time"},
		{"null time", hdr + `[null, "o", "x"]`, "line 2: event time"},
		{"negative time", hdr + `[-1, "o", "x"]`, "line 2: event time"},
		{"overflowing time", hdr + `[1e999, "o", "x"]`, "line 2: event time"},
		{"unknown type", hdr + `[1, "x", "y"]`, `line 2: unknown event type "x"`},
		{"null data", hdr + `[1, "o", null]`, "line 2: event type and data must be strings"},
		{"number data", hdr + `[1, "o", 5]`, "line 2: event type and data must be strings"},
		{"time goes back", hdr + `[1, "o", "a"]` + "\n" + `[2, "o", "b"]` + "\n" + `[1.5, "o", "c"]`, "line 4: time 1.5 is before"},
		{"bad resize", hdr + `[1, "r", "80 by 24"]`, `line 2: resize "80 by 24"`},
		{"zero resize", hdr + `[1, "r", "0x24"]`, `line 2: resize "0x24"`},
		{"huge resize", hdr + `[1, "r", "99999x24"]`, `line 2: resize "99999x24" out of range`},
		{"blank inside", hdr + `[1, "o", "a"]` + "\n\n" + `[2, "o", "b"]`, "line 3: blank line"},
		{"long line", hdr + `[0, "o", "a"]` + "\n" + long + "\n", "line 3: line longer than 1048576 bytes"},
		{"long header", `{"version":2,"width":80,"height":24,"title":"` + strings.Repeat("t", MaxLineSize) + `"}`, "line 1: line longer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(tc.in), nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestParseAccepts(t *testing.T) {
	in := `{"version": 2, "width": 80, "height": 24, "idle_time_limit": 2.5, "env": {"TERM": "xterm"}}` + "\r\n" +
		`[ 0.5 , "o" , "\u001b[0m\ud83c\udf89" ]` + "\r\n" +
		`[0.5, "m", ""]` + "\n" +
		`[1e1, "r", "100x30"]` + "\n\n\n"
	h, evs := parseAll(t, []byte(in))
	if h.Width != 80 || h.Env["TERM"] != "xterm" {
		t.Errorf("header %+v", h)
	}
	want := []Event{{0.5, "o", "\x1b[0m🎉"}, {0.5, "m", ""}, {10, "r", "100x30"}}
	if fmt.Sprint(evs) != fmt.Sprint(want) {
		t.Errorf("events %+v, want %+v", evs, want)
	}
	// A line of exactly MaxLineSize bytes is accepted.
	data := `[1, "o", "` + strings.Repeat("a", MaxLineSize-len(`[1, "o", ""]`)) + `"]`
	if _, err := Parse(strings.NewReader(`{"version":2,"width":1,"height":1}`+"\n"+data), nil); err != nil {
		t.Errorf("line of MaxLineSize: %v", err)
	}
	stop := errors.New("stop")
	if _, err := Parse(strings.NewReader(in), func(Event) error { return stop }); err != stop {
		t.Errorf("callback error: %v", err)
	}
}

// TestAsciinemaPlaysRecording checks a recording with the real asciinema player.
func TestAsciinemaPlaysRecording(t *testing.T) {
	bin := testtool.Need(t, "asciinema", "asciinema")
	path := filepath.Join(t.TempDir(), "rec.cast")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w, err := NewWriter(f, Header{Width: 80, Height: 24, Timestamp: time.Now().Unix(), Title: "test", Env: map[string]string{"TERM": "xterm", "SHELL": "/bin/sh"}}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"$ ", "echo h", "\xc3", "\xa9llo 世界\r\n", "h\u00e9llo 世界\r\n"} {
		if err := w.Output([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Input([]byte("pass\r")); err != nil {
		t.Fatal(err)
	}
	if err := w.Resize(100, 30); err != nil {
		t.Fatal(err)
	}
	if err := w.Marker("done"); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	// asciinema cat reads /dev/tty: give it a terminal.
	cmd := exec.Command(bin, "cat", path)
	cmd.Env = append(os.Environ(), "LANG=C.UTF-8", "LC_ALL=C.UTF-8")
	tty, err := pty.Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(tty) // ends with EIO once asciinema exits
	_ = tty.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("asciinema cat: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "echo héllo 世界") || strings.Count(string(out), "héllo 世界") != 2 {
		t.Errorf("asciinema cat output %q", out)
	}
}

// FuzzParse feeds Parse arbitrary bytes (recordings arrive from agents) and
// checks that whatever it accepts is sane and survives re-encoding.
func FuzzParse(f *testing.F) {
	const hdr = `{"version":2,"width":80,"height":24}` + "\n"
	f.Add([]byte(hdr + `[0.1, "o", "hi\r\n"]` + "\n" + `[0.2, "r", "10x10"]`))
	f.Add([]byte(hdr + `[1, "i", "\u00e9\ud83c\udf89"]` + "\n" + `[1, "m", ""]` + "\n\n"))
	f.Add([]byte(hdr + `[1e308, "o", "x"]`))
	f.Add([]byte(`{"version":2,"width":80,"height":24,"env":{"TERM":"x"},"title":"t"}`))
	f.Add([]byte(hdr + `[2, "o", "a"]` + "\n" + `[1, "o", "b"]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var evs []Event
		h, err := Parse(bytes.NewReader(data), func(e Event) error {
			evs = append(evs, e)
			return nil
		})
		if err != nil {
			if !strings.HasPrefix(err.Error(), "asciicast: line ") {
				t.Fatalf("error without a line number: %v", err)
			}
			return
		}
		if h.Version != 2 || h.Width < 1 || h.Height < 1 || h.Width > MaxDimension || h.Height > MaxDimension {
			t.Fatalf("accepted header %+v", h)
		}
		var out bytes.Buffer
		if _, err := NewWriter(&out, h, time.Now()); err != nil {
			t.Fatalf("accepted header does not re-encode: %v", err)
		}
		last := 0.0
		for _, e := range evs {
			if e.Time < last || math.IsNaN(e.Time) || math.IsInf(e.Time, 0) {
				t.Fatalf("accepted time %v after %v", e.Time, last)
			}
			last = e.Time
			if !utf8.ValidString(e.Data) {
				t.Fatalf("accepted data is not UTF-8: %q", e.Data)
			}
			if len(e.Data) <= maxChunk {
				out.Write(appendEvent(nil, e.Time, e.Type, []byte(e.Data)))
			}
		}
		var again []Event
		if _, err := Parse(&out, func(e Event) error { again = append(again, e); return nil }); err != nil {
			t.Fatalf("re-encoded recording does not parse: %v", err)
		}
		i := 0
		for _, e := range evs {
			if len(e.Data) > maxChunk {
				continue
			}
			if again[i].Type != e.Type || again[i].Data != e.Data {
				t.Fatalf("event %d: %+v re-parsed as %+v", i, e, again[i])
			}
			i++
		}
	})
}
