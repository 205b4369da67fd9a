// Package logging configures zerolog the same way in every Patchbay binary.
//
// Logs are structured: JSON lines with snake_case keys ("time", "level",
// "message", "error", plus fields such as "agent_id", "session_id" and
// "job_id" added by child loggers), timestamps in UTC with millisecond
// precision. When the output is a terminal, and unless the format "json" is
// asked for, a human-readable zerolog.ConsoleWriter is used instead (colours
// off when NO_COLOR is set).
//
// Setup also makes the configured logger the default everywhere a library
// might look for one: the zerolog/log package's global Logger,
// zerolog.DefaultContextLogger (so zerolog.Ctx on a context without a logger
// still logs instead of silently dropping lines), and the standard library's
// slog default (through zerolog.NewSlogHandler), which also routes the
// standard log package; libraries that log through slog or log, such as goose,
// end up in the same stream.
package logging

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/rs/zerolog"
	zlog "github.com/rs/zerolog/log"
	"golang.org/x/term"
)

// Accepted values for the format argument of [Setup].
const (
	FormatAuto    = "auto"    // console on a terminal, JSON otherwise
	FormatJSON    = "json"    // always JSON lines
	FormatConsole = "console" // always human-readable
)

// TimeFormat is the layout of the "time" field in JSON output: RFC 3339 in
// UTC with milliseconds.
const TimeFormat = "2006-01-02T15:04:05.000Z07:00"

// ParseLevel converts a level name to a zerolog level. It accepts "debug",
// "info", "warn" (or "warning") and "error" in any letter case; the empty
// string means "info".
func ParseLevel(level string) (zerolog.Level, error) {
	switch strings.ToLower(strings.TrimSpace(level)) {
	case "debug":
		return zerolog.DebugLevel, nil
	case "info", "":
		return zerolog.InfoLevel, nil
	case "warn", "warning":
		return zerolog.WarnLevel, nil
	case "error":
		return zerolog.ErrorLevel, nil
	}
	return zerolog.NoLevel, fmt.Errorf("logging: unknown level %q (want debug, info, warn or error)", level)
}

// Setup configures the global zerolog logger and returns it.
//
// level is one of "debug", "info", "warn" or "error" ("" means info); any
// other value is an error. w is where logs go (os.Stderr normally; nil means
// os.Stderr). format is "auto" (or ""), "json" or "console": with "auto" a
// zerolog.ConsoleWriter is used when w is a terminal (an *os.File, or any
// writer with an Fd method, for which golang.org/x/term.IsTerminal is true),
// JSON otherwise.
//
// Setup sets process-wide state (see the package documentation); call it once
// at start-up, before starting goroutines that log. Writers other than
// *os.File are wrapped so concurrent log calls are safe.
func Setup(w io.Writer, level, format string) (zerolog.Logger, error) {
	lvl, err := ParseLevel(level)
	if err != nil {
		return zerolog.Nop(), err
	}
	if w == nil {
		w = os.Stderr
	}
	tty := isTerminal(w)
	var console bool
	switch strings.ToLower(strings.TrimSpace(format)) {
	case FormatAuto, "":
		console = tty
	case FormatJSON:
	case FormatConsole:
		console = true
	default:
		return zerolog.Nop(), fmt.Errorf("logging: unknown format %q (want auto, json or console)", format)
	}

	// zerolog's default field names (time, level, message, error, caller)
	// are already snake_case; only the timestamp is tuned.
	zerolog.TimeFieldFormat = TimeFormat
	zerolog.TimestampFunc = func() time.Time { return time.Now().UTC() }

	if _, ok := w.(*os.File); !ok {
		w = zerolog.SyncWriter(w)
	}
	out := w
	if console {
		out = zerolog.ConsoleWriter{
			Out:        w,
			TimeFormat: "15:04:05.000",
			NoColor:    !tty || os.Getenv("NO_COLOR") != "",
		}
	}

	logger := zerolog.New(out).Level(lvl).With().Timestamp().Logger()
	zlog.Logger = logger
	ctxLogger := logger
	zerolog.DefaultContextLogger = &ctxLogger
	slog.SetDefault(slog.New(zerolog.NewSlogHandler(logger)))
	return logger, nil
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(interface{ Fd() uintptr })
	if !ok {
		return false
	}
	return term.IsTerminal(int(f.Fd()))
}
