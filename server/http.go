package server

import (
	"log"

	"github.com/rs/zerolog"
)

// newStdLogger routes net/http's own messages (TLS handshake errors and the
// like) to zerolog at debug level: a port scanner should not flood the log.
func newStdLogger(l zerolog.Logger) *log.Logger {
	return log.New(zerologWriter{l}, "", 0)
}

type zerologWriter struct{ l zerolog.Logger }

func (z zerologWriter) Write(p []byte) (int, error) {
	msg := string(p)
	if n := len(msg); n > 0 && msg[n-1] == '\n' {
		msg = msg[:n-1]
	}
	z.l.Debug().Str("component", "http").Msg(msg)
	return len(p), nil
}
