package logging

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	zlog "github.com/rs/zerolog/log"
)

// restoreGlobals puts back the process-wide state that Setup changes.
func restoreGlobals(t *testing.T) {
	t.Helper()
	tf, ts, dl, gl, sl := zerolog.TimeFieldFormat, zerolog.TimestampFunc, zerolog.DefaultContextLogger, zlog.Logger, slog.Default()
	lw, lf := log.Writer(), log.Flags()
	t.Cleanup(func() {
		zerolog.TimeFieldFormat, zerolog.TimestampFunc, zerolog.DefaultContextLogger, zlog.Logger = tf, ts, dl, gl
		slog.SetDefault(sl)
		log.SetOutput(lw)
		log.SetFlags(lf)
	})
}

func lines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("line %q is not JSON: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

func TestJSONOutput(t *testing.T) {
	restoreGlobals(t)
	for _, format := range []string{"", "auto", "json", "JSON"} {
		var buf bytes.Buffer
		logger, err := Setup(&buf, "info", format)
		if err != nil {
			t.Fatalf("Setup(format %q): %v", format, err)
		}
		before := time.Now().Add(-time.Second)
		logger.Info().Str("agent_id", "a1").Err(errors.New("boom")).Msg("hello")
		got := lines(t, &buf)
		if len(got) != 1 {
			t.Fatalf("format %q: %d lines, want 1: %s", format, len(got), buf.String())
		}
		m := got[0]
		if m["level"] != "info" || m["message"] != "hello" || m["agent_id"] != "a1" || m["error"] != "boom" {
			t.Errorf("format %q: unexpected fields %v", format, m)
		}
		ts, _ := m["time"].(string)
		tm, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			t.Fatalf("time %q does not parse: %v", ts, err)
		}
		if !strings.HasSuffix(ts, "Z") || tm.Before(before) || tm.After(time.Now().Add(time.Second)) {
			t.Errorf("time %q is not a current UTC timestamp", ts)
		}
	}
}

func TestGlobalsFollowSetup(t *testing.T) {
	restoreGlobals(t)
	var buf bytes.Buffer
	if _, err := Setup(&buf, "debug", "json"); err != nil {
		t.Fatal(err)
	}
	zerolog.Ctx(context.Background()).Debug().Msg("from ctx")
	zlog.Warn().Msg("from log pkg")
	slog.Info("from slog", "job_id", "j1")
	log.Print("from std log")
	got := lines(t, &buf)
	want := []struct{ level, msg string }{
		{"debug", "from ctx"}, {"warn", "from log pkg"}, {"info", "from slog"}, {"info", "from std log"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d lines, want %d:\n%s", len(got), len(want), buf.String())
	}
	for i, w := range want {
		if got[i]["level"] != w.level || got[i]["message"] != w.msg || got[i]["time"] == nil {
			t.Errorf("line %d = %v, want level %s message %q with a time", i, got[i], w.level, w.msg)
		}
	}
	if got[2]["job_id"] != "j1" {
		t.Errorf("slog attribute lost: %v", got[2])
	}
}

func TestLevelFiltering(t *testing.T) {
	restoreGlobals(t)
	cases := []struct {
		level string
		want  []string
	}{
		{"debug", []string{"debug", "info", "warn", "error"}},
		{"", []string{"info", "warn", "error"}},
		{"INFO", []string{"info", "warn", "error"}},
		{"warn", []string{"warn", "error"}},
		{"warning", []string{"warn", "error"}},
		{"error", []string{"error"}},
	}
	for _, c := range cases {
		var buf bytes.Buffer
		logger, err := Setup(&buf, c.level, "json")
		if err != nil {
			t.Fatalf("Setup(level %q): %v", c.level, err)
		}
		logger.Debug().Msg("d")
		logger.Info().Msg("i")
		logger.Warn().Msg("w")
		logger.Error().Msg("e")
		zerolog.Ctx(context.Background()).Debug().Msg("ctx-d") // same filter
		var levels []string
		for _, m := range lines(t, &buf) {
			levels = append(levels, m["level"].(string))
		}
		want := c.want
		if c.level == "debug" {
			want = append(want, "debug")
		}
		if strings.Join(levels, ",") != strings.Join(want, ",") {
			t.Errorf("level %q: got %v, want %v", c.level, levels, want)
		}
	}
}

func TestBadArguments(t *testing.T) {
	restoreGlobals(t)
	var buf bytes.Buffer
	for _, lvl := range []string{"verbose", "trace", "5", "infos"} {
		_, err := Setup(&buf, lvl, "json")
		if err == nil || !strings.Contains(err.Error(), "logging: unknown level") || !strings.Contains(err.Error(), lvl) {
			t.Errorf("Setup(level %q) error = %v", lvl, err)
		}
	}
	_, err := Setup(&buf, "info", "yaml")
	if err == nil || !strings.Contains(err.Error(), `logging: unknown format "yaml"`) {
		t.Errorf("Setup(format yaml) error = %v", err)
	}
	if buf.Len() != 0 {
		t.Errorf("failed Setup wrote output: %q", buf.String())
	}
}

func TestConsoleForced(t *testing.T) {
	restoreGlobals(t)
	var buf bytes.Buffer
	logger, err := Setup(&buf, "info", "console")
	if err != nil {
		t.Fatal(err)
	}
	logger.Info().Str("session_id", "s1").Msg("hello console")
	out := buf.String()
	if json.Valid(bytes.TrimSpace(buf.Bytes())) {
		t.Errorf("console output is JSON: %q", out)
	}
	if !strings.Contains(out, "hello console") || !strings.Contains(out, "session_id=s1") || !strings.Contains(out, "INF") {
		t.Errorf("console output %q lacks message, level or field", out)
	}
	if strings.Contains(out, "\x1b[") {
		t.Errorf("console output to a non-terminal has colour codes: %q", out)
	}
}

func TestConcurrentWritesToBuffer(t *testing.T) {
	restoreGlobals(t)
	var buf bytes.Buffer
	logger, err := Setup(&buf, "info", "json")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	for i := range 8 {
		go func() {
			defer func() { done <- struct{}{} }()
			for range 50 {
				logger.Info().Int("g", i).Msg("x")
			}
		}()
	}
	for range 8 {
		<-done
	}
	if n := len(lines(t, &buf)); n != 400 {
		t.Errorf("got %d lines, want 400", n)
	}
}
