// Package wire defines what travels on an agent link: frames and control
// messages. It does no networking; every decoder here takes untrusted bytes
// and is fuzzed.
//
// An agent link is one websocket. Each binary websocket message is one frame:
//
//	byte  0     frame type (Type)
//	bytes 1..4  stream ID, big endian; 0 is the control channel
//	bytes 5..   payload
//
// Stream IDs opened by the dialing side (the agent) are odd, those opened by
// the accepting side (the relay) are even, so the two never collide.
//
//	Control  stream 0 only; payload is a JSON Envelope
//	Open     opens a stream; payload is the stream kind ("session", ...)
//	Data     payload bytes for a stream, at most MaxData, within the
//	         receiver's window
//	Window   payload is a 4-byte big-endian window increment (> 0)
//	Close    the sender will write no more on this stream (half close)
//	Reset    the stream is aborted; payload is a short UTF-8 reason
package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unicode/utf8"
)

// Type is a frame type.
type Type byte

// Frame types.
const (
	TypeControl Type = 1
	TypeOpen    Type = 2
	TypeData    Type = 3
	TypeWindow  Type = 4
	TypeClose   Type = 5
	TypeReset   Type = 6
)

func (t Type) String() string {
	switch t {
	case TypeControl:
		return "control"
	case TypeOpen:
		return "open"
	case TypeData:
		return "data"
	case TypeWindow:
		return "window"
	case TypeClose:
		return "close"
	case TypeReset:
		return "reset"
	}
	return fmt.Sprintf("type(%d)", byte(t))
}

// Limits. A peer that exceeds any of them is speaking a broken or hostile
// protocol and loses its connection.
const (
	HeaderLen     = 5
	MaxData       = 64 << 10 // payload of one Data frame
	MaxControl    = 1 << 20  // payload of one Control frame
	MaxMessage    = HeaderLen + MaxControl
	MaxKindLen    = 64
	InitialWindow = 256 << 10 // bytes a sender may have in flight on a new stream
	MaxReasonLen  = 256
	ControlStream = 0
)

// ErrMalformed is wrapped by every decoding error in this package.
var ErrMalformed = errors.New("malformed frame")

// Frame is one decoded frame. Payload aliases the decoded message.
type Frame struct {
	Type    Type
	Stream  uint32
	Payload []byte
}

// AppendHeader appends a frame header to b.
func AppendHeader(b []byte, t Type, stream uint32) []byte {
	b = append(b, byte(t))
	return binary.BigEndian.AppendUint32(b, stream)
}

// Append appends the whole frame to b.
func (f Frame) Append(b []byte) []byte {
	return append(AppendHeader(b, f.Type, f.Stream), f.Payload...)
}

// Window returns the increment carried by a Window frame.
func (f Frame) Window() uint32 { return binary.BigEndian.Uint32(f.Payload) }

// WindowPayload encodes a window increment.
func WindowPayload(inc uint32) []byte { return binary.BigEndian.AppendUint32(nil, inc) }

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// DecodeFrame decodes and validates one websocket message. It checks
// everything that can be checked without connection state: the type is known,
// the stream ID fits the type, and the payload has the type's size and form.
func DecodeFrame(msg []byte) (Frame, error) {
	if len(msg) < HeaderLen {
		return Frame{}, malformed("%d bytes is shorter than the %d-byte header", len(msg), HeaderLen)
	}
	f := Frame{Type: Type(msg[0]), Stream: binary.BigEndian.Uint32(msg[1:5]), Payload: msg[HeaderLen:]}
	n := len(f.Payload)
	switch f.Type {
	case TypeControl:
		if f.Stream != ControlStream {
			return Frame{}, malformed("control frame on stream %d", f.Stream)
		}
		if n == 0 || n > MaxControl {
			return Frame{}, malformed("control payload of %d bytes (want 1..%d)", n, MaxControl)
		}
		return f, nil
	case TypeOpen, TypeData, TypeWindow, TypeClose, TypeReset:
		if f.Stream == ControlStream {
			return Frame{}, malformed("%s frame on the control stream", f.Type)
		}
	default:
		return Frame{}, malformed("unknown frame type %d", byte(f.Type))
	}
	switch f.Type {
	case TypeOpen:
		if err := checkKind(f.Payload); err != nil {
			return Frame{}, err
		}
	case TypeData:
		if n == 0 || n > MaxData {
			return Frame{}, malformed("data payload of %d bytes (want 1..%d)", n, MaxData)
		}
	case TypeWindow:
		if n != 4 {
			return Frame{}, malformed("window payload of %d bytes (want 4)", n)
		}
		if f.Window() == 0 || f.Window() > 1<<30 {
			return Frame{}, malformed("window increment %d out of range", f.Window())
		}
	case TypeClose:
		if n != 0 {
			return Frame{}, malformed("close frame with a %d-byte payload", n)
		}
	case TypeReset:
		if n > MaxReasonLen || !utf8.Valid(f.Payload) {
			return Frame{}, malformed("reset reason must be UTF-8 of at most %d bytes", MaxReasonLen)
		}
	}
	return f, nil
}

// checkKind accepts stream kinds made of [a-z0-9.-], 1..MaxKindLen bytes.
func checkKind(k []byte) error {
	if len(k) == 0 || len(k) > MaxKindLen {
		return malformed("stream kind of %d bytes (want 1..%d)", len(k), MaxKindLen)
	}
	for _, c := range k {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-') {
			return malformed("stream kind %q has characters outside [a-z0-9.-]", k)
		}
	}
	return nil
}

// ValidKind reports whether kind may name a stream.
func ValidKind(kind string) bool { return checkKind([]byte(kind)) == nil }
