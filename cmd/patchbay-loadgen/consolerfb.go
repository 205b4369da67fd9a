package main

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"time"

	"github.com/patchbay/patchbay/agent/desktop/rfbclient"
)

// The desktop measurement's viewer: agent/desktop/rfbclient (RFB 3.8, VNC
// authentication, 32-bit true colour, raw encoding) on a connection that
// counts its bytes, and a loop that keeps one incremental
// FramebufferUpdateRequest for the whole screen outstanding and counts the
// updates as they come.

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

// viewer is an RFB viewer whose connection counts its bytes.
type viewer struct {
	*rfbclient.Conn
	cc *countConn
}

// newViewer does the RFB handshake on c with password; the bytes are
// counted from the first one. c is owned by the viewer.
func newViewer(c net.Conn, password string) (*viewer, error) {
	cc := &countConn{Conn: c}
	rc, err := rfbclient.Handshake(cc, password)
	if err != nil {
		return nil, err
	}
	return &viewer{Conn: rc, cc: cc}, nil
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
// CPU over the same window). Each update is awaited for at most
// rfbclient.Timeout; ctx's end closes the viewer.
func countFrames(ctx context.Context, rc *viewer, warm, window time.Duration, mark func()) (frameCount, error) {
	f := frameCount{screenW: rc.Width, screenH: rc.Height}
	stop := context.AfterFunc(ctx, func() { rc.Close() })
	defer stop()
	start := time.Now()
	if err := rc.RequestUpdate(false); err != nil {
		return f, err
	}
	if _, err := rc.ReadUpdate(); err != nil {
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
			measuring, t0, in0, out0 = true, time.Now(), rc.cc.in.Load(), rc.cc.out.Load()
			until = t0.Add(window)
		} else if measuring && !now.Before(until) {
			f.window, f.bytesIn, f.bytesOut = now.Sub(t0), rc.cc.in.Load()-in0, rc.cc.out.Load()-out0
			mark()
			return f, nil
		}
		if err := rc.RequestUpdate(true); err != nil {
			return f, err
		}
		px, err := rc.ReadUpdate()
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
