package desktop

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Limits of the view-only filter. Each bounds what the filter reads or skips
// for one client message; nothing is allocated by a length the client chose.
const (
	// maxCutText bounds a ClientCutText body (plain or extended clipboard),
	// which is skipped, never held.
	maxCutText = 1 << 20
	// maxFence is the largest ClientFence payload RFC 6143's extension allows.
	maxFence = 64
	// maxEncodings bounds a SetEncodings list. The protocol's count is 16 bits;
	// real viewers send a few dozen (noVNC 1.7: about 30).
	maxEncodings = 1024
)

// RFB client message types (RFC 6143 and the community registry, rfbproto).
const (
	msgSetPixelFormat          = 0
	msgSetEncodings            = 2
	msgFramebufferUpdateReq    = 3
	msgKeyEvent                = 4
	msgPointerEvent            = 5
	msgClientCutText           = 6
	msgEnableContinuousUpdates = 150
	msgClientFence             = 248
	msgXvp                     = 250
	msgSetDesktopSize          = 251
	msgQEMU                    = 255
)

// encExtendedMouseButtons is the pseudo-encoding with which a client offers
// 7-byte PointerEvents (marker bit 0x80 of the button mask set, one more byte
// of buttons). A client sends them only after it offered this encoding.
const encExtendedMouseButtons = -316

// securityNames names the RFB security types a client may choose, for errors.
var securityNames = map[byte]string{
	0: "Invalid", 5: "RA2", 6: "RA2ne", 16: "Tight", 17: "Ultra", 18: "TLS",
	19: "VeNCrypt", 20: "GTK-VNC SASL", 21: "MD5 hash", 22: "xvp",
	30: "Apple Remote Desktop", 35: "Apple macOS authentication", 113: "MS-Logon II",
	129: "Unix Login",
}

// CopyViewOnly copies an RFB (VNC) client's bytes from src to dst, the VNC server,
// passing the handshake and the messages that only ask for pixels, and dropping
// every message that would act on the machine.
//
// Passed: the protocol version (3.7 or 3.8), the security type (None or VNC
// authentication) and its response, ClientInit, SetPixelFormat, SetEncodings,
// FramebufferUpdateRequest, EnableContinuousUpdates and ClientFence. Dropped:
// KeyEvent, PointerEvent, ClientCutText (also the extended clipboard),
// SetDesktopSize, xvp (shutdown, reboot, reset) and the QEMU extended key event.
// Anything else ends the copy with an error: the filter never guesses a length.
// Each passed unit is written whole with one Write, so what reaches dst is
// always a sequence of whole messages, whatever the client sent.
//
// It returns (bytes written, nil) when src ends at a message boundary, and an
// error naming what was wrong otherwise.
func CopyViewOnly(dst io.Writer, src io.Reader) (int64, error) {
	f := &viewOnly{r: bufio.NewReader(src), w: dst}
	err := f.run()
	if errors.Is(err, errCleanEOF) {
		err = nil
	}
	return f.n, err
}

// errCleanEOF ends the copy when the client stops between two units.
var errCleanEOF = errors.New("view-only: client closed at a message boundary")

// viewOnly is one client stream's filter state.
type viewOnly struct {
	r        *bufio.Reader
	w        io.Writer
	n        int64
	extMouse bool // the last SetEncodings offered ExtendedMouseButtons
	// buf holds one passed message; the largest is SetEncodings.
	buf [4 + 4*maxEncodings]byte
}

func (f *viewOnly) run() error {
	if err := f.handshake(); err != nil {
		return err
	}
	for {
		if err := f.message(); err != nil {
			return err
		}
	}
}

// handshake passes the client's side of the RFB handshake: ProtocolVersion,
// the chosen security type, its response, and ClientInit.
func (f *viewOnly) handshake() error {
	v := f.buf[:12]
	if err := f.first(v, "protocol version"); err != nil {
		return err
	}
	switch string(v) {
	case "RFB 003.007\n", "RFB 003.008\n":
	default:
		if !isVersion(v) {
			return fmt.Errorf("view-only: the client did not start with an RFB protocol version (it sent %q): only a VNC viewer can connect", v)
		}
		// 3.3 (and UltraVNC's 3.4/3.6) let the server pick the security type
		// with no byte from the client; Apple's 3.889 and RealVNC's 4.x/5.x
		// add messages of their own. Neither can be checked here.
		return fmt.Errorf("view-only: the client asked for RFB %s: only 3.7 and 3.8 can be filtered (set the viewer to RFB 3.8)", v[4:11])
	}
	if err := f.pass(v); err != nil {
		return err
	}

	t := f.buf[:1]
	if err := f.first(t, "security type"); err != nil {
		return err
	}
	switch t[0] {
	case 1: // None: nothing more from the client.
		if err := f.pass(t); err != nil {
			return err
		}
	case 2: // VNC authentication: the 16-byte DES response to the challenge.
		if err := f.pass(t); err != nil {
			return err
		}
		resp := f.buf[:16]
		if err := f.first(resp, "VNC authentication response"); err != nil {
			return err
		}
		if err := f.pass(resp); err != nil {
			return err
		}
	default:
		name := securityNames[t[0]]
		if name == "" {
			name = "unknown"
		}
		return fmt.Errorf("view-only: security type %d (%s) cannot be filtered: only None (1) and VNC authentication (2)", t[0], name)
	}

	ci := f.buf[:1]
	if err := f.first(ci, "ClientInit"); err != nil {
		return err
	}
	return f.pass(ci)
}

// isVersion reports whether v looks like "RFB xxx.yyy\n".
func isVersion(v []byte) bool {
	if len(v) != 12 || string(v[:4]) != "RFB " || v[7] != '.' || v[11] != '\n' {
		return false
	}
	for _, i := range []int{4, 5, 6, 8, 9, 10} {
		if v[i] < '0' || v[i] > '9' {
			return false
		}
	}
	return true
}

// message reads one client message and passes or drops it.
func (f *viewOnly) message() error {
	typ, err := f.r.ReadByte()
	if err == io.EOF {
		return errCleanEOF
	}
	if err != nil {
		return fmt.Errorf("view-only: read from the client: %w", err)
	}
	f.buf[0] = typ
	switch typ {
	case msgSetPixelFormat:
		return f.passFixed(20, "SetPixelFormat")
	case msgFramebufferUpdateReq:
		return f.passFixed(10, "FramebufferUpdateRequest")
	case msgEnableContinuousUpdates:
		return f.passFixed(10, "EnableContinuousUpdates")
	case msgSetEncodings:
		return f.setEncodings()
	case msgClientFence:
		return f.clientFence()
	case msgKeyEvent:
		return f.drop(8, "KeyEvent")
	case msgPointerEvent:
		return f.pointerEvent()
	case msgClientCutText:
		return f.clientCutText()
	case msgSetDesktopSize:
		return f.setDesktopSize()
	case msgXvp:
		return f.drop(4, "xvp")
	case msgQEMU:
		return f.qemu()
	default:
		return fmt.Errorf("view-only: unknown client message type %d: it cannot be filtered, so the connection ends", typ)
	}
}

// passFixed passes a message of size bytes whose type byte is in f.buf[0].
func (f *viewOnly) passFixed(size int, name string) error {
	if err := f.rest(f.buf[1:size], name, 1, size); err != nil {
		return err
	}
	return f.pass(f.buf[:size])
}

// setEncodings passes SetEncodings: type, padding, count (16 bits), then
// count signed 32-bit encodings.
func (f *viewOnly) setEncodings() error {
	const name = "SetEncodings"
	if err := f.rest(f.buf[1:4], name, 1, 4); err != nil {
		return err
	}
	count := int(binary.BigEndian.Uint16(f.buf[2:4]))
	if count > maxEncodings {
		return fmt.Errorf("view-only: SetEncodings with %d encodings exceeds the limit of %d", count, maxEncodings)
	}
	size := 4 + 4*count
	if err := f.rest(f.buf[4:size], name, 4, size); err != nil {
		return err
	}
	f.extMouse = false
	for i := 4; i < size; i += 4 {
		if int32(binary.BigEndian.Uint32(f.buf[i:])) == encExtendedMouseButtons {
			f.extMouse = true
		}
	}
	return f.pass(f.buf[:size])
}

// clientFence passes ClientFence: type, 3 padding, flags (32 bits), length
// (8 bits, at most 64), then length bytes of payload.
func (f *viewOnly) clientFence() error {
	const name = "ClientFence"
	if err := f.rest(f.buf[1:9], name, 1, 9); err != nil {
		return err
	}
	length := int(f.buf[8])
	if length > maxFence {
		return fmt.Errorf("view-only: ClientFence payload of %d bytes exceeds the protocol's %d", length, maxFence)
	}
	size := 9 + length
	if err := f.rest(f.buf[9:size], name, 9, size); err != nil {
		return err
	}
	return f.pass(f.buf[:size])
}

// pointerEvent drops a PointerEvent: 6 bytes, or 7 when the client offered
// ExtendedMouseButtons and set the marker bit of the button mask.
func (f *viewOnly) pointerEvent() error {
	const name = "PointerEvent"
	mask, err := f.r.ReadByte()
	if err != nil {
		return f.short(name, 1, 6, err)
	}
	size := 6
	if f.extMouse && mask&0x80 != 0 {
		size = 7
	}
	return f.skip(int64(size-2), name, 2, int64(size))
}

// clientCutText drops ClientCutText: type, 3 padding, a signed 32-bit length,
// then the text; a negative length is the extended clipboard with -length bytes.
func (f *viewOnly) clientCutText() error {
	const name = "ClientCutText"
	if err := f.rest(f.buf[1:8], name, 1, 8); err != nil {
		return err
	}
	length := int64(int32(binary.BigEndian.Uint32(f.buf[4:8])))
	what := "client cut text"
	if length < 0 {
		length = -length
		what = "client extended clipboard message"
	}
	if length > maxCutText {
		return fmt.Errorf("view-only: %s of %d bytes exceeds the 1 MiB limit", what, length)
	}
	return f.skip(length, name, 8, 8+length)
}

// setDesktopSize drops SetDesktopSize: type, padding, width, height, the
// number of screens, padding, then 16 bytes per screen.
func (f *viewOnly) setDesktopSize() error {
	const name = "SetDesktopSize"
	if err := f.rest(f.buf[1:8], name, 1, 8); err != nil {
		return err
	}
	screens := int64(f.buf[6])
	return f.skip(16*screens, name, 8, 8+16*screens)
}

// qemu drops the QEMU extended key event and refuses the other QEMU messages.
func (f *viewOnly) qemu() error {
	sub, err := f.r.ReadByte()
	if err != nil {
		return f.short("QEMU client message", 1, 2, err)
	}
	switch sub {
	case 0:
		return f.skip(10, "QEMU extended key event", 2, 12)
	case 1:
		return errors.New("view-only: QEMU audio client messages cannot be filtered: turn audio off in the viewer")
	default:
		return fmt.Errorf("view-only: unknown QEMU client message subtype %d", sub)
	}
}

// drop skips a fixed-size message whose type byte was read.
func (f *viewOnly) drop(size int64, name string) error {
	return f.skip(size-1, name, 1, size)
}

// first reads the first unit of a handshake step: the client closing before
// it is a clean end; closing inside it is an error.
func (f *viewOnly) first(b []byte, what string) error {
	got, err := io.ReadFull(f.r, b)
	if err == io.EOF {
		return errCleanEOF
	}
	if err != nil {
		return f.short(what, got, int64(len(b)), err)
	}
	return nil
}

// rest reads b, the part of a message after its first done bytes.
func (f *viewOnly) rest(b []byte, name string, done, size int) error {
	got, err := io.ReadFull(f.r, b)
	if err != nil {
		return f.short(name, done+got, int64(size), err)
	}
	return nil
}

// skip discards k bytes of a dropped message after its first done bytes.
func (f *viewOnly) skip(k int64, name string, done int, size int64) error {
	got, err := io.CopyN(io.Discard, f.r, k)
	if err != nil {
		return f.short(name, done+int(got), size, err)
	}
	return nil
}

// short is the error for a unit the client did not send whole.
func (f *viewOnly) short(name string, got int, size int64, err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return fmt.Errorf("view-only: the client closed inside its %s (%d of %d bytes): %w", name, got, size, io.ErrUnexpectedEOF)
	}
	return fmt.Errorf("view-only: read the client's %s: %w", name, err)
}

// pass writes one whole passed unit to the server.
func (f *viewOnly) pass(b []byte) error {
	w, err := f.w.Write(b)
	f.n += int64(w)
	if err != nil {
		return fmt.Errorf("view-only: write to the VNC server: %w", err)
	}
	return nil
}
