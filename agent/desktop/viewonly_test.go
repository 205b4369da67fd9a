package desktop

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/iotest"
	"time"
)

// The client messages noVNC 1.7.0 sends, byte for byte: the output of its
// RFB.messages functions (server/console/node_modules/@novnc/novnc/core/rfb.js)
// run under node with a socket that records what is pushed, e.g.
// RFB.messages.pixelFormat(sock, 24, true) and
// RFB.messages.extendedPointerEvent(sock, 100, 200, 0x100).
var voNoVNCBytes = map[string]string{
	"pixelFormat":              "000000002018000100ff00ff00ff000810000000",
	"clientEncodings":          "020000160000000100000007fffffefc0000000500000010ffffff2000000000fffffd06ffffff02ffffff21ffffff20fffffefefffffefbfffffeccfffffecbfffffec8fffffec7fffffecdc0a1e5cefffffec4574d5664ffffff11",
	"fbUpdateRequest":          "03010000000004000300",
	"enableContinuousUpdates":  "96010000000004000300",
	"clientFence":              "f80000000000000303616263",
	"keyEvent":                 "0401000000000061",
	"QEMUExtendedKeyEvent":     "ff000001000000610000001e",
	"pointerEvent":             "0501006400c8",
	"extendedPointerEvent":     "0580006400c802",
	"clientCutText":            "060000000000000568656c6c6f",
	"extendedClipboardCaps":    "06000000fffffff81f00000200000000",
	"extendedClipboardProvide": "06000000ffffffed10000001789c62606060cec86400000000ffff",
	"setDesktopSize":           "fb0003200258010000000000000000000320025800000000",
	"xvpOp":                    "fa000103",
}

func voNoVNC(t testing.TB, name string) []byte {
	b, err := hex.DecodeString(voNoVNCBytes[name])
	if err != nil || len(b) == 0 {
		t.Fatalf("noVNC vector %q: %v", name, err)
	}
	return b
}

// Handshakes: the client's side only.
var (
	voHsNone = voCat([]byte("RFB 003.008\n"), []byte{1}, []byte{1})
	voHsAuth = voCat([]byte("RFB 003.007\n"), []byte{2}, bytes.Repeat([]byte{0xa5}, 16), []byte{0})
)

func voCat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

func voBE32(v int32) []byte { return binary.BigEndian.AppendUint32(nil, uint32(v)) }

func voSetEncodings(encs ...int32) []byte {
	b := []byte{2, 0, byte(len(encs) >> 8), byte(len(encs))}
	for _, e := range encs {
		b = append(b, voBE32(e)...)
	}
	return b
}

func voCutText(length int32, body []byte) []byte {
	return voCat([]byte{6, 0, 0, 0}, voBE32(length), body)
}

func voFence(payload []byte) []byte {
	return voCat([]byte{248, 0, 0, 0}, voBE32(1), []byte{byte(len(payload))}, payload)
}

func voDesktopSize(screens int) []byte {
	return voCat([]byte{251, 0, 3, 32, 2, 88, byte(screens), 0}, bytes.Repeat([]byte{7}, 16*screens))
}

var (
	voFBUR = []byte{3, 1, 0, 0, 0, 0, 4, 0, 3, 0}
	voXvp  = []byte{250, 0, 1, 4}
)

type viewOnlyCase struct {
	name string
	in   []byte
	want []byte // what reaches the server
	err  string // "" for a clean end; else a part of the error
}

func viewOnlyCases(t testing.TB) []viewOnlyCase {
	extEnc := voSetEncodings(0, encExtendedMouseButtons)
	cases := []viewOnlyCase{
		{"empty", nil, nil, ""},
		{"handshake none", voHsNone, voHsNone, ""},
		{"handshake vnc auth 3.7", voHsAuth, voHsAuth, ""},
		{"version only", voHsNone[:12], voHsNone[:12], ""},
		{"auth before response", voHsAuth[:13], voHsAuth[:13], ""},
		{"auth before ClientInit", voHsAuth[:29], voHsAuth[:29], ""},

		// Passed messages, byte for byte, as noVNC sends them.
		{"SetPixelFormat", voCat(voHsNone, voNoVNC(t, "pixelFormat")), voCat(voHsNone, voNoVNC(t, "pixelFormat")), ""},
		{"SetEncodings", voCat(voHsNone, voNoVNC(t, "clientEncodings")), voCat(voHsNone, voNoVNC(t, "clientEncodings")), ""},
		{"SetEncodings empty", voCat(voHsNone, voSetEncodings()), voCat(voHsNone, voSetEncodings()), ""},
		{"FramebufferUpdateRequest", voCat(voHsAuth, voNoVNC(t, "fbUpdateRequest")), voCat(voHsAuth, voNoVNC(t, "fbUpdateRequest")), ""},
		{"EnableContinuousUpdates", voCat(voHsNone, voNoVNC(t, "enableContinuousUpdates")), voCat(voHsNone, voNoVNC(t, "enableContinuousUpdates")), ""},
		{"ClientFence", voCat(voHsNone, voNoVNC(t, "clientFence")), voCat(voHsNone, voNoVNC(t, "clientFence")), ""},
		{"ClientFence 64", voCat(voHsNone, voFence(bytes.Repeat([]byte{'x'}, 64))), voCat(voHsNone, voFence(bytes.Repeat([]byte{'x'}, 64))), ""},
		{"ClientFence empty", voCat(voHsNone, voFence(nil)), voCat(voHsNone, voFence(nil)), ""},

		// Dropped messages vanish; the requests around them pass intact.
		{"KeyEvent", voCat(voHsNone, voFBUR, voNoVNC(t, "keyEvent"), voFBUR), voCat(voHsNone, voFBUR, voFBUR), ""},
		{"PointerEvent", voCat(voHsNone, voFBUR, voNoVNC(t, "pointerEvent"), voFBUR), voCat(voHsNone, voFBUR, voFBUR), ""},
		{"PointerEvent button 8 without ExtendedMouseButtons", voCat(voHsNone, []byte{5, 0x80, 0, 1, 0, 2}, voFBUR), voCat(voHsNone, voFBUR), ""},
		{"extended PointerEvent", voCat(voHsNone, extEnc, voNoVNC(t, "extendedPointerEvent"), voFBUR), voCat(voHsNone, extEnc, voFBUR), ""},
		{"PointerEvent after ExtendedMouseButtons", voCat(voHsNone, extEnc, voNoVNC(t, "pointerEvent"), voFBUR), voCat(voHsNone, extEnc, voFBUR), ""},
		{"noVNC encodings then extended PointerEvent", voCat(voHsNone, voNoVNC(t, "clientEncodings"), voNoVNC(t, "extendedPointerEvent"), voFBUR), voCat(voHsNone, voNoVNC(t, "clientEncodings"), voFBUR), ""},
		{"ExtendedMouseButtons withdrawn", voCat(voHsNone, extEnc, voSetEncodings(0), []byte{5, 0x80, 0, 1, 0, 2}, voFBUR), voCat(voHsNone, extEnc, voSetEncodings(0), voFBUR), ""},
		{"ClientCutText", voCat(voHsNone, voFBUR, voNoVNC(t, "clientCutText"), voFBUR), voCat(voHsNone, voFBUR, voFBUR), ""},
		{"ClientCutText empty", voCat(voHsNone, voCutText(0, nil), voFBUR), voCat(voHsNone, voFBUR), ""},
		{"ClientCutText 1 MiB", voCat(voHsNone, voCutText(maxCutText, make([]byte, maxCutText)), voFBUR), voCat(voHsNone, voFBUR), ""},
		{"extended clipboard caps", voCat(voHsNone, voNoVNC(t, "extendedClipboardCaps"), voFBUR), voCat(voHsNone, voFBUR), ""},
		{"extended clipboard provide", voCat(voHsNone, voNoVNC(t, "extendedClipboardProvide"), voFBUR), voCat(voHsNone, voFBUR), ""},
		{"SetDesktopSize", voCat(voHsNone, voNoVNC(t, "setDesktopSize"), voFBUR), voCat(voHsNone, voFBUR), ""},
		{"SetDesktopSize 255 screens", voCat(voHsNone, voDesktopSize(255), voFBUR), voCat(voHsNone, voFBUR), ""},
		{"SetDesktopSize no screens", voCat(voHsNone, voDesktopSize(0), voFBUR), voCat(voHsNone, voFBUR), ""},
		{"xvp", voCat(voHsNone, voNoVNC(t, "xvpOp"), voFBUR), voCat(voHsNone, voFBUR), ""},
		{"xvp reboot", voCat(voHsNone, voXvp, voFBUR), voCat(voHsNone, voFBUR), ""},
		{"QEMU extended key event", voCat(voHsNone, voNoVNC(t, "QEMUExtendedKeyEvent"), voFBUR), voCat(voHsNone, voFBUR), ""},

		// Refused: what cannot be filtered ends the copy before it is written.
		{"RFB 3.3", []byte("RFB 003.003\n"), nil, "view-only: the client asked for RFB 003.003: only 3.7 and 3.8 can be filtered"},
		{"RFB 3.6 UltraVNC", []byte("RFB 003.006\n"), nil, "asked for RFB 003.006"},
		{"RFB 3.889 Apple", []byte("RFB 003.889\n"), nil, "asked for RFB 003.889"},
		{"RFB 4.1", []byte("RFB 004.001\n"), nil, "asked for RFB 004.001"},
		{"not RFB", []byte("GET / HTTP/1.1\r\n"), nil, "did not start with an RFB protocol version"},
		{"VeNCrypt", voCat([]byte("RFB 003.008\n"), []byte{19}), []byte("RFB 003.008\n"), "view-only: security type 19 (VeNCrypt) cannot be filtered: only None (1) and VNC authentication (2)"},
		{"Tight security", voCat([]byte("RFB 003.008\n"), []byte{16}), []byte("RFB 003.008\n"), "security type 16 (Tight)"},
		{"security type 0", voCat([]byte("RFB 003.008\n"), []byte{0}), []byte("RFB 003.008\n"), "security type 0 (Invalid)"},
		{"security type 200", voCat([]byte("RFB 003.008\n"), []byte{200}), []byte("RFB 003.008\n"), "security type 200 (unknown)"},
		{"unknown type 200", voCat(voHsNone, voFBUR, []byte{200, 0, 0, 0}), voCat(voHsNone, voFBUR), "view-only: unknown client message type 200"},
		{"unknown type 1", voCat(voHsNone, []byte{1}), voHsNone, "unknown client message type 1"},
		{"gii 253", voCat(voHsNone, []byte{253, 0}), voHsNone, "unknown client message type 253"},
		{"cut text too long", voCat(voHsNone, voCutText(2000000, []byte("x"))), voHsNone, "view-only: client cut text of 2000000 bytes exceeds the 1 MiB limit"},
		{"cut text 1 MiB + 1", voCat(voHsNone, voCutText(maxCutText+1, nil)), voHsNone, "client cut text of 1048577 bytes exceeds the 1 MiB limit"},
		{"extended clipboard too long", voCat(voHsNone, voCutText(-2000000, nil)), voHsNone, "extended clipboard message of 2000000 bytes exceeds the 1 MiB limit"},
		{"extended clipboard min int32", voCat(voHsNone, voCutText(-1<<31, nil)), voHsNone, "of 2147483648 bytes exceeds the 1 MiB limit"},
		{"fence too long", voCat(voHsNone, voFence(bytes.Repeat([]byte{'x'}, 65))), voHsNone, "ClientFence payload of 65 bytes exceeds the protocol's 64"},
		{"too many encodings", voCat(voHsNone, voSetEncodings(make([]int32, maxEncodings+1)...)), voHsNone, "SetEncodings with 1025 encodings exceeds the limit of 1024"},
		{"most encodings", voCat(voHsNone, voSetEncodings(make([]int32, maxEncodings)...)), voCat(voHsNone, voSetEncodings(make([]int32, maxEncodings)...)), ""},
		{"QEMU audio", voCat(voHsNone, []byte{255, 1, 0, 0}), voHsNone, "QEMU audio client messages cannot be filtered"},
		{"QEMU subtype 9", voCat(voHsNone, []byte{255, 9}), voHsNone, "unknown QEMU client message subtype 9"},

		// The client closing inside a unit is an error.
		{"cut version", []byte("RFB 003"), nil, "closed inside its protocol version (7 of 12 bytes)"},
		{"cut auth response", voHsAuth[:20], voHsAuth[:13], "closed inside its VNC authentication response (7 of 16 bytes)"},
		{"cut QEMU subtype", voCat(voHsNone, []byte{255}), voHsNone, "closed inside its QEMU client message (1 of 2 bytes)"},
		{"cut PointerEvent mask", voCat(voHsNone, []byte{5}), voHsNone, "closed inside its PointerEvent (1 of 6 bytes)"},
		{"cut extended PointerEvent", voCat(voHsNone, extEnc, voNoVNC(t, "extendedPointerEvent")[:6]), voCat(voHsNone, extEnc), "closed inside its PointerEvent (6 of 7 bytes)"},
		{"cut cut text", voCat(voHsNone, voCutText(100, []byte("abc"))), voHsNone, "closed inside its ClientCutText (11 of 108 bytes)"},
		{"cut fence header", voCat(voHsNone, voFence([]byte("ab"))[:5]), voHsNone, "closed inside its ClientFence (5 of 9 bytes)"},
		{"cut fence payload", voCat(voHsNone, voFence([]byte("ab"))[:10]), voHsNone, "closed inside its ClientFence (10 of 11 bytes)"},
		{"cut encodings", voCat(voHsNone, voNoVNC(t, "clientEncodings")[:50]), voHsNone, "closed inside its SetEncodings (50 of 92 bytes)"},
		{"cut desktop size", voCat(voHsNone, voDesktopSize(2)[:30]), voHsNone, "closed inside its SetDesktopSize (30 of 40 bytes)"},
	}
	// Every message cut one byte short: nothing of it passes.
	for _, m := range []string{"pixelFormat", "clientEncodings", "fbUpdateRequest", "enableContinuousUpdates", "clientFence",
		"keyEvent", "QEMUExtendedKeyEvent", "pointerEvent", "clientCutText", "extendedClipboardCaps",
		"extendedClipboardProvide", "setDesktopSize", "xvpOp"} {
		b := voNoVNC(t, m)
		cases = append(cases, viewOnlyCase{"cut " + m, voCat(voHsNone, voFBUR, b[:len(b)-1]), voCat(voHsNone, voFBUR),
			fmt.Sprintf("(%d of %d bytes): unexpected EOF", len(b)-1, len(b))})
	}
	return cases
}

// voRecorder keeps each Write apart, to check that passed units are whole.
type voRecorder struct{ writes [][]byte }

func (r *voRecorder) Write(p []byte) (int, error) {
	r.writes = append(r.writes, bytes.Clone(p))
	return len(p), nil
}

func (r *voRecorder) bytes() []byte { return voCat(r.writes...) }

func TestCopyViewOnly(t *testing.T) {
	readers := map[string]func(io.Reader) io.Reader{
		"whole":    func(r io.Reader) io.Reader { return r },
		"one byte": iotest.OneByteReader,
		"half":     iotest.HalfReader,
		"data+EOF": iotest.DataErrReader,
	}
	for _, c := range viewOnlyCases(t) {
		for rn, wrap := range readers {
			t.Run(c.name+"/"+rn, func(t *testing.T) {
				var out voRecorder
				n, err := CopyViewOnly(&out, wrap(bytes.NewReader(c.in)))
				got := out.bytes()
				if !bytes.Equal(got, c.want) {
					t.Errorf("the server got\n%x\nwant\n%x", got, c.want)
				}
				if n != int64(len(got)) {
					t.Errorf("CopyViewOnly returned %d bytes written; the server got %d", n, len(got))
				}
				switch {
				case c.err == "" && err != nil:
					t.Errorf("error %v, want none", err)
				case c.err != "" && err == nil:
					t.Errorf("no error, want one with %q", c.err)
				case c.err != "" && !strings.Contains(err.Error(), c.err):
					t.Errorf("error %q, want one with %q", err, c.err)
				}
				if err != nil && !strings.HasPrefix(err.Error(), "view-only: ") {
					t.Errorf("error %q does not start with the step", err)
				}
				voCheckUnits(t, out.writes)
			})
		}
	}
}

// voCheckUnits fails unless every Write is exactly one whole unit of the
// client's stream that may reach the server: a handshake step or a passed
// message. It is a second, independent parser of the passed half of RFB.
func voCheckUnits(t testing.TB, writes [][]byte) {
	t.Helper()
	for i, w := range writes {
		var want int
		switch {
		case i == 0:
			want = 12
		case i == 1:
			want = 1
		case i == 2 && writes[1][0] == 2:
			want = 16
		case i == 2 || i == 3 && writes[1][0] == 2:
			want = 1 // ClientInit
		case len(w) == 0:
			t.Fatalf("write %d is empty", i)
		default:
			switch w[0] {
			case 0:
				want = 20
			case 2:
				if len(w) < 4 {
					t.Fatalf("write %d: SetEncodings of %d bytes", i, len(w))
				}
				want = 4 + 4*int(binary.BigEndian.Uint16(w[2:]))
			case 3, 150:
				want = 10
			case 248:
				if len(w) < 9 {
					t.Fatalf("write %d: ClientFence of %d bytes", i, len(w))
				}
				want = 9 + int(w[8])
			default:
				t.Fatalf("write %d passed a message of type %d to the server: %x", i, w[0], w)
			}
		}
		if len(w) != want {
			t.Fatalf("write %d is %d bytes, want one whole unit of %d: %x", i, len(w), want, w)
		}
	}
}

func TestCopyViewOnlyReadError(t *testing.T) {
	reset := errors.New("connection reset by peer")
	for _, in := range [][]byte{nil, voHsNone, voCat(voHsNone, voFBUR), voCat(voHsNone, voFBUR[:4]), voCat(voHsNone, voNoVNC(t, "clientCutText")[:9])} {
		var out bytes.Buffer
		_, err := CopyViewOnly(&out, io.MultiReader(bytes.NewReader(in), iotest.ErrReader(reset)))
		if !errors.Is(err, reset) || !strings.HasPrefix(err.Error(), "view-only: read ") {
			t.Errorf("after %x: error %v, want a view-only read error wrapping %q", in, err, reset)
		}
	}
}

type voFailWriter struct{ after int }

func (w *voFailWriter) Write(p []byte) (int, error) {
	if w.after == 0 {
		return 0, errors.New("broken pipe")
	}
	w.after--
	return len(p), nil
}

func TestCopyViewOnlyWriteError(t *testing.T) {
	in := voCat(voHsNone, voFBUR, voFBUR)
	for after := 0; after < 5; after++ {
		n, err := CopyViewOnly(&voFailWriter{after: after}, bytes.NewReader(in))
		if err == nil || !strings.Contains(err.Error(), "view-only: write to the VNC server: broken pipe") {
			t.Errorf("server failing after %d writes: error %v", after, err)
		}
		if want := int64(len(voCat(voHsNone, voFBUR, voFBUR)[:[]int{0, 12, 13, 14, 24}[after]])); n != want {
			t.Errorf("server failing after %d writes: %d bytes written, want %d", after, n, want)
		}
	}
}

// voCountReader counts what the filter read.
type voCountReader struct {
	r io.Reader
	n int64
}

func (c *voCountReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func TestCopyViewOnlyHugeCutTextNotAllocated(t *testing.T) {
	for _, length := range []int32{1<<31 - 1, -1 << 31, 2000000} {
		// 64 KiB of the claimed body is there: the filter must refuse at
		// the header, not read or allocate it.
		src := &voCountReader{r: io.MultiReader(bytes.NewReader(voCat(voHsNone, voCutText(length, nil))), io.LimitReader(voZeros{}, 64<<10))}
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		_, err := CopyViewOnly(io.Discard, src)
		runtime.ReadMemStats(&after)
		if err == nil || !strings.Contains(err.Error(), "exceeds the 1 MiB limit") {
			t.Errorf("length %d: error %v, want the 1 MiB limit", length, err)
		}
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 64<<10 {
			t.Errorf("length %d: the filter allocated %d bytes", length, alloc)
		}
		if src.n > 8<<10 {
			t.Errorf("length %d: the filter read %d bytes of the body it refused", length, src.n)
		}
	}
	// A 1 MiB text is skipped through a small buffer, not held.
	src := io.MultiReader(bytes.NewReader(voCat(voHsNone, voCutText(-maxCutText, nil))), io.LimitReader(voZeros{}, maxCutText), bytes.NewReader(voFBUR))
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	var out bytes.Buffer
	_, err := CopyViewOnly(&out, src)
	runtime.ReadMemStats(&after)
	if err != nil || !bytes.Equal(out.Bytes(), voCat(voHsNone, voFBUR)) {
		t.Errorf("1 MiB extended clipboard: error %v, server got %x", err, out.Bytes())
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 256<<10 {
		t.Errorf("skipping 1 MiB allocated %d bytes", alloc)
	}
}

type voZeros struct{}

func (voZeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func FuzzCopyViewOnly(f *testing.F) {
	for _, c := range viewOnlyCases(f) {
		if len(c.in) < 4096 {
			f.Add(c.in)
		}
	}
	f.Add(voCat(voHsAuth, voNoVNC(f, "clientEncodings"), voNoVNC(f, "pixelFormat"), voFBUR, voNoVNC(f, "extendedPointerEvent"),
		voNoVNC(f, "keyEvent"), voNoVNC(f, "enableContinuousUpdates"), voNoVNC(f, "clientFence"), voNoVNC(f, "extendedClipboardCaps"), voFBUR))
	f.Fuzz(func(t *testing.T, in []byte) {
		var out voRecorder
		n, err := CopyViewOnly(&out, bytes.NewReader(in))
		got := out.bytes()
		if n != int64(len(got)) {
			t.Fatalf("returned %d bytes written; the server got %d", n, len(got))
		}
		if err != nil && !strings.HasPrefix(err.Error(), "view-only: ") {
			t.Fatalf("error %q does not start with the step", err)
		}
		voCheckUnits(t, out.writes)

		// Split reads change nothing.
		var split bytes.Buffer
		_, serr := CopyViewOnly(&split, iotest.OneByteReader(bytes.NewReader(in)))
		if !bytes.Equal(split.Bytes(), got) || fmt.Sprint(serr) != fmt.Sprint(err) {
			t.Fatalf("one byte at a time: %x, %v; whole: %x, %v", split.Bytes(), serr, got, err)
		}

		// What passed is a clean stream: filtering it again changes nothing.
		var again bytes.Buffer
		if _, err := CopyViewOnly(&again, bytes.NewReader(got)); err != nil || !bytes.Equal(again.Bytes(), got) {
			t.Fatalf("filtering the output again: %x, %v; want %x", again.Bytes(), err, got)
		}

		// A prefix of the input passes a prefix of the output.
		var half bytes.Buffer
		_, _ = CopyViewOnly(&half, bytes.NewReader(in[:len(in)/2]))
		if !bytes.HasPrefix(got, half.Bytes()) {
			t.Fatalf("half the input passed %x, not a prefix of %x", half.Bytes(), got)
		}
	})
}

// TestCopyViewOnlyX11VNC runs the filter in front of a real x11vnc on a real
// Xvfb: x11vnc must read the filtered stream message for message (it keeps
// answering update requests after every kind of dropped input), and none of
// the input may reach it. x11vnc logs each pointer and key event it gets
// (-debug_pointer, -debug_keyboard); after the filtered input the test sends
// one pointer and one key event straight to x11vnc, and those must be the
// first it logs.
func TestCopyViewOnlyX11VNC(t *testing.T) {
	for _, tool := range []struct{ name, pkg string }{{"Xvfb", "xvfb"}, {"x11vnc", "x11vnc"}} {
		if _, err := exec.LookPath(tool.name); err != nil {
			t.Fatalf("%s is not installed: apt-get install %s", tool.name, tool.pkg)
		}
	}
	display := voStartXvfb(t)
	addr, log := voStartX11VNC(t, display)

	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatalf("dial x11vnc at %s: %v", addr, err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	filtered := make(chan error, 1)
	go func() {
		_, err := CopyViewOnly(conn, pr)
		filtered <- err
	}()
	defer func() {
		pw.Close()
		if err := <-filtered; err != nil {
			t.Errorf("CopyViewOnly: %v", err)
		}
	}()
	srv := bufio.NewReader(conn)
	send := func(b ...[]byte) {
		t.Helper()
		if _, err := pw.Write(voCat(b...)); err != nil {
			t.Fatalf("write to the filter: %v", err)
		}
	}
	read := func(n int, what string) []byte {
		t.Helper()
		b := make([]byte, n)
		if _, err := io.ReadFull(srv, b); err != nil {
			t.Fatalf("read x11vnc's %s: %v", what, err)
		}
		return b
	}

	// The handshake, with no password (-nopw).
	if v := read(12, "protocol version"); string(v) != "RFB 003.008\n" {
		t.Fatalf("x11vnc speaks %q", v)
	}
	send([]byte("RFB 003.008\n"))
	types := read(int(read(1, "number of security types")[0]), "security types")
	if !bytes.Contains(types, []byte{1}) {
		t.Fatalf("x11vnc -nopw offers security types %v, not None (1)", types)
	}
	send([]byte{1})
	if r := read(4, "security result"); !bytes.Equal(r, []byte{0, 0, 0, 0}) {
		t.Fatalf("security result %x", r)
	}
	send([]byte{1})
	init := read(24, "ServerInit")
	read(int(binary.BigEndian.Uint32(init[20:])), "desktop name")
	w, h := binary.BigEndian.Uint16(init[0:]), binary.BigEndian.Uint16(init[2:])
	full := []byte{3, 0, 0, 0, 0, 0, byte(w >> 8), byte(w), byte(h >> 8), byte(h)}
	small := []byte{3, 0, 0, 0, 0, 0, 0, 16, 0, 16}
	update := func(after string, req []byte) {
		t.Helper()
		send(req)
		for {
			switch typ := read(1, "message type after "+after)[0]; typ {
			case 0: // FramebufferUpdate, raw rectangles of 32-bit pixels
				n := int(binary.BigEndian.Uint16(read(3, "FramebufferUpdate")[1:]))
				for range n {
					r := read(12, "rectangle")
					if enc := int32(binary.BigEndian.Uint32(r[8:])); enc != 0 {
						t.Fatalf("rectangle encoding %d, want raw", enc)
					}
					size := int64(binary.BigEndian.Uint16(r[4:])) * int64(binary.BigEndian.Uint16(r[6:])) * 4
					if _, err := io.CopyN(io.Discard, srv, size); err != nil {
						t.Fatalf("read a rectangle after %s: %v", after, err)
					}
				}
				return
			case 2: // Bell
			case 3: // ServerCutText
				read(int(binary.BigEndian.Uint32(read(7, "ServerCutText")[3:])), "server cut text")
			default:
				t.Fatalf("x11vnc sent message type %d after %s", typ, after)
			}
		}
	}

	// noVNC's pixel format; raw pixels only, so the test can read updates.
	send(voNoVNC(t, "pixelFormat"), voSetEncodings(0, -223, encExtendedMouseButtons))
	update("the handshake", full)
	for _, m := range []string{"pointerEvent", "keyEvent", "QEMUExtendedKeyEvent", "clientCutText",
		"extendedClipboardCaps", "extendedClipboardProvide", "setDesktopSize", "xvpOp"} {
		send(voNoVNC(t, m))
		if m == "pointerEvent" { // x11vnc holds updates back while a button is down
			send([]byte{5, 0, 0, 100, 0, 200})
		}
		update(m, small)
	}
	send([]byte{4, 0, 0, 0, 0, 0, 0, 0x61}) // 'a' released
	update("the key release", small)

	// The markers, straight to x11vnc.
	if _, err := conn.Write(voCat([]byte{5, 0, 0, 123, 0, 45}, []byte{4, 1, 0, 0, 0, 0, 0, 0x7a}, []byte{4, 0, 0, 0, 0, 0, 0, 0x7a})); err != nil {
		t.Fatal(err)
	}
	update("the markers", small)
	pointer := log.wait(t, "# pointer(")
	key := log.wait(t, "# keyboard(")
	t.Logf("x11vnc's first input events: %q, %q", pointer, key)
	if !strings.Contains(pointer, "x: 123, y:  45") {
		t.Errorf("the first pointer event x11vnc got is %q, not the marker at 123,45: input passed the filter", pointer)
	}
	if !strings.Contains(key, "0x7a") {
		t.Errorf("the first key event x11vnc got is %q, not the marker z (0x7a): input passed the filter", key)
	}
}

// voStartXvfb starts a real Xvfb on a free display and returns its name.
func voStartXvfb(t *testing.T) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cmd := exec.Command("Xvfb", "-displayfd", "3", "-screen", "0", "640x480x24", "-nolisten", "tcp")
	cmd.ExtraFiles = []*os.File{w}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start Xvfb: %v", err)
	}
	w.Close()
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	n, err := bufio.NewReader(r).ReadString('\n')
	if err != nil {
		t.Fatalf("Xvfb did not print its display number: %v: %s", err, stderr.String())
	}
	return ":" + strings.TrimSpace(n)
}

// voLog is x11vnc's log, read as it comes: the reader never blocks x11vnc.
type voLog struct {
	mu      sync.Mutex
	lines   []string
	changed chan struct{} // a token when lines grew
	done    chan struct{} // closed when x11vnc closed its log
}

// wait returns the first line that has any of the parts,
// waiting for x11vnc to write it.
func (l *voLog) wait(t *testing.T, parts ...string) string {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for i := 0; ; {
		l.mu.Lock()
		lines := l.lines[i:]
		i = len(l.lines)
		l.mu.Unlock()
		for _, line := range lines {
			for _, p := range parts {
				if strings.Contains(line, p) {
					return line
				}
			}
		}
		select {
		case <-l.changed:
		case <-l.done:
			if l.mu.Lock(); i == len(l.lines) {
				l.mu.Unlock()
				t.Fatalf("x11vnc exited without logging any of %q", parts)
			}
			l.mu.Unlock()
		case <-timeout:
			t.Fatalf("x11vnc logged none of %q in 30s", parts)
		}
	}
}

// voStartX11VNC starts x11vnc on display with no password and returns its
// address and its log.
func voStartX11VNC(t *testing.T, display string) (string, *voLog) {
	t.Helper()
	cmd := exec.Command("x11vnc", "-display", display, "-localhost", "-autoport", "5900", "-nopw",
		"-once", "-norc", "-nocmds", "-noremote", "-nossl", "-noipv6", "-debug_pointer", "-debug_keyboard")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start x11vnc: %v", err)
	}
	log := &voLog{changed: make(chan struct{}, 1), done: make(chan struct{})}
	go func() { // owned by this test; ends when x11vnc exits and closes stderr
		defer close(log.done)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			log.mu.Lock()
			log.lines = append(log.lines, sc.Text())
			log.mu.Unlock()
			select {
			case log.changed <- struct{}{}:
			default:
			}
		}
	}()
	t.Cleanup(func() {
		// SIGTERM: x11vnc then removes its MIT-SHM segments (SIGKILL leaks them).
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-log.done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-log.done
		}
		cmd.Wait()
	})
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if port, ok := strings.CutPrefix(sc.Text(), "PORT="); ok {
			go io.Copy(io.Discard, stdout) // ends with x11vnc
			return net.JoinHostPort("127.0.0.1", port), log
		}
	}
	t.Fatalf("x11vnc exited without printing PORT=")
	return "", nil
}
