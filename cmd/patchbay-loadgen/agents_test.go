package main

import (
	"errors"
	"testing"
)

func TestErrorClass(t *testing.T) {
	tests := []struct{ msg, want string }{
		{"connect to relay: dial tcp 127.0.0.5:0->127.0.0.1:42903: connect: connection refused", "refused"},
		{"connect to relay: dial tcp 127.0.0.5:0->127.0.0.1:42903: connect: connection reset by peer", "connect-reset"},
		{"connect to relay: read tcp 127.0.0.5:4100->127.0.0.1:42903: read: connection reset by peer", "reset"},
		{"connect to relay: write tcp 127.0.0.5:4100->127.0.0.1:42903: write: broken pipe", "reset"},
		{"connect to relay: tls: handshake timeout", "timeout"},
		{"connect to relay: dial tcp: socket: too many open files", "emfile"},
		{"connect to relay: unexpected EOF", "eof"},
		{"something else", "other"},
	}
	for _, tt := range tests {
		if got := errorClass(errors.New(tt.msg)); got != tt.want {
			t.Errorf("errorClass(%q) = %q, want %q", tt.msg, got, tt.want)
		}
	}
}
