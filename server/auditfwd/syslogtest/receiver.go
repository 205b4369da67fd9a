package syslogtest

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
)

// Received is one message and the connection (numbered from 1 in accept
// order) it came on.
type Received struct {
	Conn int
	Msg  Message
	Raw  string
}

// Receiver accepts syslog connections on one address until Stop. It owns
// its accept loop and one reader per connection; Stop ends and waits for
// them all.
type Receiver struct {
	ln      net.Listener
	tlsCfg  *tls.Config
	mu      sync.Mutex
	msgs    []Received
	errs    []error
	conns   map[net.Conn]bool
	nconn   int
	changed chan struct{} // closed and replaced on every message, error and connection
	wg      sync.WaitGroup
}

// Start listens on addr ("127.0.0.1:0" for any port), with TLS when tlsCfg
// is not nil.
func Start(addr string, tlsCfg *tls.Config) (*Receiver, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("syslog receiver: listen on %s: %w", addr, err)
	}
	r := &Receiver{ln: ln, tlsCfg: tlsCfg, conns: map[net.Conn]bool{}, changed: make(chan struct{})}
	r.wg.Add(1)
	go r.accept()
	return r, nil
}

// Addr is the address it listens on.
func (r *Receiver) Addr() string { return r.ln.Addr().String() }

func (r *Receiver) accept() {
	defer r.wg.Done()
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return // Stop closed the listener
		}
		if r.tlsCfg != nil {
			c = tls.Server(c, r.tlsCfg)
		}
		r.mu.Lock()
		r.nconn++
		n := r.nconn
		r.conns[c] = true
		r.notifyLocked()
		r.mu.Unlock()
		r.wg.Add(1)
		go r.read(c, n)
	}
}

// read parses frames from one connection; a protocol error is recorded
// and ends the connection.
func (r *Receiver) read(c net.Conn, n int) {
	defer r.wg.Done()
	defer func() {
		c.Close()
		r.mu.Lock()
		delete(r.conns, c)
		r.notifyLocked()
		r.mu.Unlock()
	}()
	br := bufio.NewReader(c)
	for {
		frame, err := ReadFrame(br)
		if err != nil {
			var ne net.Error
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !errors.As(err, &ne) {
				r.fail(fmt.Errorf("connection %d: %w", n, err))
			}
			return
		}
		m, err := Parse(frame)
		if err != nil {
			r.fail(fmt.Errorf("connection %d: %w in %q", n, err, frame))
			return
		}
		r.mu.Lock()
		r.msgs = append(r.msgs, Received{Conn: n, Msg: m, Raw: string(frame)})
		r.notifyLocked()
		r.mu.Unlock()
	}
}

func (r *Receiver) fail(err error) {
	r.mu.Lock()
	r.errs = append(r.errs, err)
	r.notifyLocked()
	r.mu.Unlock()
}

func (r *Receiver) notifyLocked() {
	close(r.changed)
	r.changed = make(chan struct{})
}

// Messages returns what has arrived so far.
func (r *Receiver) Messages() []Received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Received(nil), r.msgs...)
}

// Errors returns the protocol errors seen so far (a strict receiver
// records them and drops the connection).
func (r *Receiver) Errors() []error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]error(nil), r.errs...)
}

// Conns returns how many connections it has accepted.
func (r *Receiver) Conns() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.nconn
}

// Wait returns once cond holds for the messages received so far, checking
// on every change, or ctx's error. A protocol error ends the wait too.
func (r *Receiver) Wait(ctx context.Context, cond func([]Received) bool) error {
	for {
		r.mu.Lock()
		ok, changed := cond(r.msgs), r.changed
		var err error
		if len(r.errs) > 0 {
			err = r.errs[0]
		}
		r.mu.Unlock()
		if ok {
			return nil
		}
		if err != nil {
			return fmt.Errorf("syslog receiver: %w", err)
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Stop closes the listener and every connection (what is still unread in
// them is lost, as when a real receiver goes down) and waits for its
// goroutines.
func (r *Receiver) Stop() {
	r.ln.Close()
	r.mu.Lock()
	for c := range r.conns {
		c.Close()
	}
	r.mu.Unlock()
	r.wg.Wait()
}
