package main

import (
	"bufio"
	"context"
	"crypto/des"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"time"
)

// A minimal RFB (VNC, RFC 6143) viewer for the desktop measurement: RFB
// 3.8 with VNC authentication, 32-bit true colour, the raw encoding only
// (every VNC server has it), and a loop that keeps one incremental
// FramebufferUpdateRequest for the whole screen outstanding and counts the
// updates as they come. It reads the pixels (as a viewer must) but does not
// keep them.

// RFB message types.
const (
	rfbSetPixelFormat = 0
	rfbSetEncodings   = 2
	rfbUpdateRequest  = 3

	rfbUpdate    = 0
	rfbColourMap = 1
	rfbBell      = 2
	rfbCutText   = 3

	rfbSecNone = 1
	rfbSecVNC  = 2
)

// countConn counts the bytes read from and written to a connection.
type countConn struct {
	net.Conn
	in, out atomic.Int64
}

func (c *countConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.in.Add(int64(n))
	return n, err
}

func (c *countConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.out.Add(int64(n))
	return n, err
}

// rfbConn is an RFB connection after the handshake.
type rfbConn struct {
	c             *countConn
	r             *bufio.Reader
	width, height int
	name          string
	buf           []byte
}

// rfbHandshake speaks RFB 3.8 on c with password (VNC authentication; none
// when the server offers only that and password is ""), ClientInit shared,
// then sets 32 bpp true colour and the raw encoding.
func rfbHandshake(c net.Conn, password string) (*rfbConn, error) {
	cc := &countConn{Conn: c}
	rc := &rfbConn{c: cc, r: bufio.NewReaderSize(cc, 256<<10)}
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	defer c.SetDeadline(time.Time{})
	ver := make([]byte, 12)
	if _, err := io.ReadFull(rc.r, ver); err != nil {
		return nil, fmt.Errorf("rfb: read ProtocolVersion: %w", err)
	}
	if !strings.HasPrefix(string(ver), "RFB 003.") {
		return nil, fmt.Errorf("rfb: server speaks %q, not RFB 3.x", ver)
	}
	if _, err := cc.Write([]byte("RFB 003.008\n")); err != nil {
		return nil, err
	}
	n, err := rc.r.ReadByte()
	if err != nil {
		return nil, fmt.Errorf("rfb: read security types: %w", err)
	}
	if n == 0 {
		return nil, fmt.Errorf("rfb: server refused the connection: %s", rc.reason())
	}
	types := make([]byte, n)
	if _, err := io.ReadFull(rc.r, types); err != nil {
		return nil, err
	}
	chosen := byte(0)
	for _, t := range types {
		if t == rfbSecVNC || t == rfbSecNone && password == "" {
			chosen = t
			break
		}
	}
	if chosen == 0 {
		return nil, fmt.Errorf("rfb: server offers security types %v, want VNC authentication (2)", types)
	}
	if _, err := cc.Write([]byte{chosen}); err != nil {
		return nil, err
	}
	if chosen == rfbSecVNC {
		challenge := make([]byte, 16)
		if _, err := io.ReadFull(rc.r, challenge); err != nil {
			return nil, fmt.Errorf("rfb: read VNC challenge: %w", err)
		}
		if _, err := cc.Write(vncResponse(password, challenge)); err != nil {
			return nil, err
		}
	}
	var result uint32
	if err := binary.Read(rc.r, binary.BigEndian, &result); err != nil {
		return nil, fmt.Errorf("rfb: read SecurityResult: %w", err)
	}
	if result != 0 {
		return nil, fmt.Errorf("rfb: authentication failed: %s", rc.reason())
	}
	if _, err := cc.Write([]byte{1}); err != nil { // ClientInit: shared
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
		return nil, err
	}
	rc.width, rc.height, rc.name = int(init.W), int(init.H), string(name)
	pf := []byte{rfbSetPixelFormat, 0, 0, 0, 32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0, 0, 0, 0}
	enc := []byte{rfbSetEncodings, 0, 0, 1, 0, 0, 0, 0} // one encoding: raw (0)
	if _, err := cc.Write(append(pf, enc...)); err != nil {
		return nil, fmt.Errorf("rfb: write SetPixelFormat: %w", err)
	}
	return rc, nil
}

// reason reads a u32-length reason string, best effort.
func (rc *rfbConn) reason() string {
	var n uint32
	if binary.Read(rc.r, binary.BigEndian, &n) != nil || n > 4096 {
		return "(no reason)"
	}
	b := make([]byte, n)
	_, _ = io.ReadFull(rc.r, b)
	return string(b)
}

// vncResponse is the VNC authentication answer: the challenge encrypted
// with DES, the key being the password's first 8 bytes with each byte's
// bits reversed.
func vncResponse(password string, challenge []byte) []byte {
	var key [8]byte
	copy(key[:], password)
	for i, b := range key {
		var r byte
		for j := range 8 {
			if b&(1<<j) != 0 {
				r |= 1 << (7 - j)
			}
		}
		key[i] = r
	}
	blk, _ := des.NewCipher(key[:]) // 8 bytes: never fails
	out := make([]byte, 16)
	blk.Encrypt(out[:8], challenge[:8])
	blk.Encrypt(out[8:], challenge[8:16])
	return out
}

// request sends a FramebufferUpdateRequest for the whole screen.
func (rc *rfbConn) request(incremental bool) error {
	m := make([]byte, 10)
	m[0] = rfbUpdateRequest
	if incremental {
		m[1] = 1
	}
	binary.BigEndian.PutUint16(m[6:], uint16(rc.width))
	binary.BigEndian.PutUint16(m[8:], uint16(rc.height))
	_, err := rc.c.Write(m)
	return err
}

// readUpdate reads server messages until a FramebufferUpdate and returns
// the pixels it covered.
func (rc *rfbConn) readUpdate() (int64, error) {
	for {
		t, err := rc.r.ReadByte()
		if err != nil {
			return 0, fmt.Errorf("rfb: read server message: %w", err)
		}
		switch t {
		case rfbUpdate:
			return rc.readRects()
		case rfbBell:
		case rfbCutText:
			var h struct {
				Pad [3]byte
				N   uint32
			}
			if err := binary.Read(rc.r, binary.BigEndian, &h); err != nil {
				return 0, err
			}
			if _, err := io.CopyN(io.Discard, rc.r, int64(h.N)); err != nil {
				return 0, err
			}
		case rfbColourMap:
			var h struct {
				Pad        byte
				First, Num uint16
			}
			if err := binary.Read(rc.r, binary.BigEndian, &h); err != nil {
				return 0, err
			}
			if _, err := io.CopyN(io.Discard, rc.r, int64(h.Num)*6); err != nil {
				return 0, err
			}
		default:
			return 0, fmt.Errorf("rfb: unexpected server message type %d", t)
		}
	}
}

func (rc *rfbConn) readRects() (int64, error) {
	var h struct {
		Pad byte
		N   uint16
	}
	if err := binary.Read(rc.r, binary.BigEndian, &h); err != nil {
		return 0, fmt.Errorf("rfb: read FramebufferUpdate: %w", err)
	}
	var pixels int64
	for range int(h.N) {
		var r struct {
			X, Y, W, H uint16
			Enc        int32
		}
		if err := binary.Read(rc.r, binary.BigEndian, &r); err != nil {
			return 0, fmt.Errorf("rfb: read rectangle: %w", err)
		}
		if r.Enc != 0 {
			return 0, fmt.Errorf("rfb: rectangle in encoding %d, asked for raw only", r.Enc)
		}
		if int(r.X)+int(r.W) > rc.width || int(r.Y)+int(r.H) > rc.height {
			return 0, fmt.Errorf("rfb: rectangle %dx%d+%d+%d outside the %dx%d screen", r.W, r.H, r.X, r.Y, rc.width, rc.height)
		}
		n := int64(r.W) * int64(r.H) * 4
		if int64(len(rc.buf)) < n {
			rc.buf = make([]byte, n)
		}
		if _, err := io.ReadFull(rc.r, rc.buf[:n]); err != nil {
			return 0, fmt.Errorf("rfb: read raw pixels: %w", err)
		}
		pixels += int64(r.W) * int64(r.H)
	}
	return pixels, nil
}

// frameCount is what a viewer received over a window.
type frameCount struct {
	updates     int   // FramebufferUpdate messages
	pixels      int64 // pixels they covered
	bytesIn     int64 // bytes from the server
	bytesOut    int64 // bytes to the server
	window      time.Duration
	screenW     int
	screenH     int
	firstUpdate time.Duration // from the first request to the first update
}

// perSecond is updates per second.
func (f frameCount) perSecond() float64 {
	if f.window <= 0 {
		return 0
	}
	return float64(f.updates) / f.window.Seconds()
}

// screensPerSecond is the pixels updated per second in whole screens.
func (f frameCount) screensPerSecond() float64 {
	if f.window <= 0 || f.screenW*f.screenH == 0 {
		return 0
	}
	return float64(f.pixels) / float64(f.screenW*f.screenH) / f.window.Seconds()
}

// mbps is the server's bytes per second in MB (10^6 bytes).
func (f frameCount) mbps() float64 {
	if f.window <= 0 {
		return 0
	}
	return float64(f.bytesIn) / 1e6 / f.window.Seconds()
}

// countFrames asks for the whole screen, waits for it, then for warm keeps
// one incremental request outstanding, then counts the updates over window,
// calling mark when the window starts and when it ends (for readings of
// CPU over the same window).
func countFrames(ctx context.Context, rc *rfbConn, warm, window time.Duration, mark func()) (frameCount, error) {
	f := frameCount{screenW: rc.width, screenH: rc.height}
	stop := context.AfterFunc(ctx, func() { rc.c.Close() })
	defer stop()
	_ = rc.c.SetDeadline(time.Now().Add(warm + window + 60*time.Second))
	defer rc.c.SetDeadline(time.Time{})
	start := time.Now()
	if err := rc.request(false); err != nil {
		return f, err
	}
	if _, err := rc.readUpdate(); err != nil {
		return f, err
	}
	f.firstUpdate = time.Since(start)
	measuring := false
	var t0 time.Time
	var in0, out0 int64
	until := time.Now().Add(warm)
	for {
		now := time.Now()
		if !measuring && !now.Before(until) {
			mark()
			measuring, t0, in0, out0 = true, time.Now(), rc.c.in.Load(), rc.c.out.Load()
			until = t0.Add(window)
		} else if measuring && !now.Before(until) {
			f.window, f.bytesIn, f.bytesOut = now.Sub(t0), rc.c.in.Load()-in0, rc.c.out.Load()-out0
			mark()
			return f, nil
		}
		if err := rc.request(true); err != nil {
			return f, err
		}
		px, err := rc.readUpdate()
		if err != nil {
			if ctx.Err() != nil {
				err = errors.Join(err, ctx.Err())
			}
			return f, err
		}
		if measuring {
			f.updates++
			f.pixels += px
		}
	}
}
