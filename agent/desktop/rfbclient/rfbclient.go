// Package rfbclient is a small but real RFB (VNC, RFC 6143) viewer: RFB
// 3.8 with VNC authentication, 32-bit true colour and the raw encoding only
// (every VNC server has it). It asks for full or incremental framebuffer
// updates, keeps the framebuffer and sends input. The remote desktop's tests
// (agent/desktop, agent/sshd, e2e) use it to see and drive a real x11vnc,
// and the load generator (cmd/patchbay-loadgen) to count the updates a
// viewer receives. It is not a server.
package rfbclient

import (
	"bufio"
	"crypto/des"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strings"
	"time"
)

// Security types and messages used here (RFC 6143).
const (
	secNone    = 1
	secVNCAuth = 2

	msgSetPixelFormat = 0
	msgSetEncodings   = 2
	msgUpdateRequest  = 3
	msgKeyEvent       = 4
	msgPointerEvent   = 5

	srvFramebufferUpdate = 0
	srvColourMap         = 1
	srvBell              = 2
	srvCutText           = 3

	encRaw = 0
)

// Conn is an RFB client connection after the handshake. Its framebuffer is
// 32 bits per pixel, little endian, red<<16 | green<<8 | blue.
type Conn struct {
	c             net.Conn
	r             *bufio.Reader
	Version       string // the server's ProtocolVersion, e.g. "RFB 003.008"
	Width, Height int
	Name          string
	fb            []byte // Width*Height pixels of 4 bytes, as the server sent them
}

// Timeout bounds the handshake and each ReadUpdate.
const Timeout = 30 * time.Second

// Handshake speaks RFB 3.8 on c: VNC authentication with password (or
// none, if the server offers only that and password is ""), ClientInit
// shared, ServerInit; then it sets a 32-bit true-colour pixel format and the
// raw encoding. c is owned by the returned Conn.
func Handshake(c net.Conn, password string) (*Conn, error) {
	rc := &Conn{c: c, r: bufio.NewReaderSize(c, 256<<10)}
	_ = c.SetDeadline(time.Now().Add(Timeout))
	defer c.SetDeadline(time.Time{})
	ver := make([]byte, 12)
	if _, err := io.ReadFull(rc.r, ver); err != nil {
		return nil, fmt.Errorf("rfb: read ProtocolVersion: %w", err)
	}
	rc.Version = strings.TrimSpace(string(ver))
	if !strings.HasPrefix(rc.Version, "RFB 003.") {
		return nil, fmt.Errorf("rfb: server speaks %q, not RFB 3.x", ver)
	}
	if _, err := c.Write([]byte("RFB 003.008\n")); err != nil {
		return nil, fmt.Errorf("rfb: write ProtocolVersion: %w", err)
	}
	n, err := rc.r.ReadByte()
	if err != nil {
		return nil, fmt.Errorf("rfb: read security types: %w", err)
	}
	if n == 0 {
		return nil, fmt.Errorf("rfb: server refused the connection: %s", rc.readString())
	}
	types := make([]byte, n)
	if _, err := io.ReadFull(rc.r, types); err != nil {
		return nil, fmt.Errorf("rfb: read security types: %w", err)
	}
	var chosen byte
	for _, t := range types {
		if t == secVNCAuth || (t == secNone && password == "") {
			chosen = t
			break
		}
	}
	if chosen == 0 {
		return nil, fmt.Errorf("rfb: server offers security types %v, want VNC authentication (2)", types)
	}
	if _, err := c.Write([]byte{chosen}); err != nil {
		return nil, err
	}
	if chosen == secVNCAuth {
		challenge := make([]byte, 16)
		if _, err := io.ReadFull(rc.r, challenge); err != nil {
			return nil, fmt.Errorf("rfb: read VNC challenge: %w", err)
		}
		if _, err := c.Write(VNCResponse(password, challenge)); err != nil {
			return nil, err
		}
	}
	var result uint32
	if err := binary.Read(rc.r, binary.BigEndian, &result); err != nil {
		return nil, fmt.Errorf("rfb: read SecurityResult: %w", err)
	}
	if result != 0 {
		return nil, fmt.Errorf("rfb: authentication failed: %s", rc.readString())
	}
	if _, err := c.Write([]byte{1}); err != nil { // ClientInit: shared
		return nil, err
	}
	var init struct {
		W, H uint16
		PF   [16]byte
		N    uint32
	}
	if err := binary.Read(rc.r, binary.BigEndian, &init); err != nil {
		return nil, fmt.Errorf("rfb: read ServerInit: %w", err)
	}
	if init.N > 1<<16 {
		return nil, fmt.Errorf("rfb: ServerInit name of %d bytes", init.N)
	}
	name := make([]byte, init.N)
	if _, err := io.ReadFull(rc.r, name); err != nil {
		return nil, fmt.Errorf("rfb: read ServerInit name: %w", err)
	}
	rc.Width, rc.Height, rc.Name = int(init.W), int(init.H), string(name)
	rc.fb = make([]byte, rc.Width*rc.Height*4)
	// SetPixelFormat: 32 bpp, depth 24, little endian, true colour, max 255, shifts 16/8/0.
	pf := []byte{msgSetPixelFormat, 0, 0, 0, 32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0, 0, 0, 0}
	enc := []byte{msgSetEncodings, 0, 0, 1, 0, 0, 0, encRaw}
	if _, err := c.Write(append(pf, enc...)); err != nil {
		return nil, fmt.Errorf("rfb: write SetPixelFormat: %w", err)
	}
	return rc, nil
}

// readString reads a u32-length reason string, best effort.
func (c *Conn) readString() string {
	var n uint32
	if binary.Read(c.r, binary.BigEndian, &n) != nil || n > 4096 {
		return "(no reason)"
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(c.r, b); err != nil {
		return "(no reason)"
	}
	return string(b)
}

// VNCResponse is the answer to a VNC authentication challenge: the
// challenge DES-encrypted with the password (first 8 bytes, zero padded),
// each key byte's bits reversed, as VNC does.
func VNCResponse(password string, challenge []byte) []byte {
	key := make([]byte, 8)
	copy(key, password)
	for i, b := range key {
		var r byte
		for j := range 8 {
			if b&(1<<j) != 0 {
				r |= 0x80 >> j
			}
		}
		key[i] = r
	}
	block, err := des.NewCipher(key)
	if err != nil {
		panic(err) // an 8-byte key is always valid
	}
	out := make([]byte, len(challenge))
	for i := 0; i+8 <= len(challenge); i += 8 {
		block.Encrypt(out[i:i+8], challenge[i:i+8])
	}
	return out
}

// Close closes the connection.
func (c *Conn) Close() error { return c.c.Close() }

// RequestUpdate sends a FramebufferUpdateRequest for the whole screen.
func (c *Conn) RequestUpdate(incremental bool) error {
	m := make([]byte, 10)
	m[0] = msgUpdateRequest
	if incremental {
		m[1] = 1
	}
	binary.BigEndian.PutUint16(m[6:], uint16(c.Width))
	binary.BigEndian.PutUint16(m[8:], uint16(c.Height))
	_, err := c.c.Write(m)
	return err
}

// Pointer sends a PointerEvent: buttons mask at (x, y).
func (c *Conn) Pointer(buttons byte, x, y int) error {
	m := []byte{msgPointerEvent, buttons, 0, 0, 0, 0}
	binary.BigEndian.PutUint16(m[2:], uint16(x))
	binary.BigEndian.PutUint16(m[4:], uint16(y))
	_, err := c.c.Write(m)
	return err
}

// Key sends a KeyEvent for the X keysym key.
func (c *Conn) Key(down bool, key uint32) error {
	m := make([]byte, 8)
	m[0] = msgKeyEvent
	if down {
		m[1] = 1
	}
	binary.BigEndian.PutUint32(m[4:], key)
	_, err := c.c.Write(m)
	return err
}

// ReadUpdate reads server messages until one FramebufferUpdate has been
// applied to the framebuffer (bells, colour maps and clipboard text are
// skipped) and returns how many pixels it covered. Each call is bounded by
// Timeout; closing the Conn ends it at once.
func (c *Conn) ReadUpdate() (int64, error) {
	_ = c.c.SetReadDeadline(time.Now().Add(Timeout))
	defer c.c.SetReadDeadline(time.Time{})
	for {
		t, err := c.r.ReadByte()
		if err != nil {
			return 0, fmt.Errorf("rfb: read server message: %w", err)
		}
		switch t {
		case srvFramebufferUpdate:
			return c.readRects()
		case srvBell:
		case srvCutText:
			var h struct {
				Pad [3]byte
				N   uint32
			}
			if err := binary.Read(c.r, binary.BigEndian, &h); err != nil {
				return 0, err
			}
			if _, err := io.CopyN(io.Discard, c.r, int64(h.N)); err != nil {
				return 0, err
			}
		case srvColourMap:
			var h struct {
				Pad        byte
				First, Num uint16
			}
			if err := binary.Read(c.r, binary.BigEndian, &h); err != nil {
				return 0, err
			}
			if _, err := io.CopyN(io.Discard, c.r, int64(h.Num)*6); err != nil {
				return 0, err
			}
		default:
			return 0, fmt.Errorf("rfb: unexpected server message type %d", t)
		}
	}
}

func (c *Conn) readRects() (int64, error) {
	var h struct {
		Pad byte
		N   uint16
	}
	if err := binary.Read(c.r, binary.BigEndian, &h); err != nil {
		return 0, fmt.Errorf("rfb: read FramebufferUpdate: %w", err)
	}
	var pixels int64
	for range int(h.N) {
		var r struct {
			X, Y, W, H uint16
			Enc        int32
		}
		if err := binary.Read(c.r, binary.BigEndian, &r); err != nil {
			return 0, fmt.Errorf("rfb: read rectangle: %w", err)
		}
		if r.Enc != encRaw {
			return 0, fmt.Errorf("rfb: rectangle in encoding %d, asked for raw only", r.Enc)
		}
		if int(r.X)+int(r.W) > c.Width || int(r.Y)+int(r.H) > c.Height {
			return 0, fmt.Errorf("rfb: rectangle %dx%d+%d+%d outside the %dx%d screen", r.W, r.H, r.X, r.Y, c.Width, c.Height)
		}
		// Rows go straight into the framebuffer: a full-width rectangle
		// in one read.
		stride, width := c.Width*4, int(r.W)*4
		off := int(r.Y)*stride + int(r.X)*4
		if width == stride {
			if _, err := io.ReadFull(c.r, c.fb[off:off+int(r.H)*stride]); err != nil {
				return 0, fmt.Errorf("rfb: read raw pixels: %w", err)
			}
		} else {
			for y := range int(r.H) {
				o := off + y*stride
				if _, err := io.ReadFull(c.r, c.fb[o:o+width]); err != nil {
					return 0, fmt.Errorf("rfb: read raw pixels: %w", err)
				}
			}
		}
		pixels += int64(r.W) * int64(r.H)
	}
	return pixels, nil
}

// Pixel is the colour at (x, y) of the framebuffer as last updated, 0xRRGGBB.
func (c *Conn) Pixel(x, y int) uint32 {
	return binary.LittleEndian.Uint32(c.fb[(y*c.Width+x)*4:]) & 0xffffff
}

// WaitPixel asks for the whole screen, then for incremental updates, until
// the pixel at (x, y) is want or timeout passes, and returns the last colour
// seen. (A VNC server may send its first frame before it has read the
// screen: x11vnc starts from black.)
func (c *Conn) WaitPixel(x, y int, want uint32, timeout time.Duration) (uint32, error) {
	deadline := time.Now().Add(timeout)
	incremental := false
	for {
		if err := c.RequestUpdate(incremental); err != nil {
			return 0, err
		}
		if _, err := c.ReadUpdate(); err != nil {
			return c.Pixel(x, y), err
		}
		if p := c.Pixel(x, y); p == want || time.Now().After(deadline) {
			return p, nil
		}
		incremental = true
	}
}
