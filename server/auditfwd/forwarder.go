// Package auditfwd forwards the relay's audit log to a syslog receiver, so
// the log lives outside the relay too: every record as one RFC 5424 message
// (format.go), octet-counted over TLS (RFC 5425) or plain TCP (RFC 6587).
//
// The Forwarder never stands in the way of the relay's writes: it is one
// goroutine that reads records from the store by seq, after a cursor kept
// in the database (audit_forward), and writes them to the receiver. A slow
// or absent receiver only makes it fall behind; it reconnects with backoff
// and catches up, also after a relay restart. Every record is sent at
// least once and in seq order.
//
// Syslog over TCP has no acknowledgement of its own, so the cursor moves
// past a record only when the record has been written, the receiver's TCP
// has acknowledged its bytes (measured on Linux with SIOCOUTQ) and the
// connection has then stayed up for the settle time. After a broken
// connection the forwarder resends from the cursor: a receiver may see a
// record twice across a reconnect, never within one connection, and the
// seq in each message tells the duplicates.
//
// Several relays sharing one database must not all forward to the same
// receiver (each would send every record): give --syslog to one of them.
package auditfwd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/patchbay/patchbay/internal/backoff"
	"github.com/patchbay/patchbay/server/store"
	"github.com/rs/zerolog"
)

// Defaults for Config fields left zero.
const (
	DefaultPoll   = time.Second
	DefaultSettle = time.Second
	// batch is how many records are read and written at a time.
	batch = 500
	// writeTimeout bounds one batch's writes: a receiver that stops
	// reading is dropped and reconnected.
	writeTimeout = 30 * time.Second
)

// Config configures a Forwarder.
type Config struct {
	Target
	Store    *store.Store
	Hostname string // HOSTNAME in the messages (default: os.Hostname)
	Version  string // the relay's version (origin element)
	MaxSize  int    // largest message (default DefaultMaxSize)
	// Poll is how often the store is checked for new records when idle.
	Poll time.Duration
	// Settle is how long a connection must stay up after a record was
	// acknowledged before the cursor moves past it.
	Settle time.Duration
	// RetryBase and RetryMax bound the reconnect backoff (defaults 1s, 30s).
	RetryBase, RetryMax time.Duration
	Log                 zerolog.Logger
}

// Forwarder sends the audit log to one receiver. New checks its
// configuration; Start runs it; Close stops it and waits.
type Forwarder struct {
	cfg    Config
	d      *dialer
	format Format
	log    zerolog.Logger
	cancel context.CancelFunc
	done   chan struct{}

	mu        sync.Mutex
	cursor    int64 // delivered (saved) up to here
	sent      int64 // written up to here
	connected bool
	lastErr   string
}

// New checks cfg (the URL, the CA and client certificate files).
func New(cfg Config) (*Forwarder, error) {
	d, err := newDialer(cfg.Target)
	if err != nil {
		return nil, err
	}
	if cfg.Store == nil {
		return nil, errors.New("audit forwarder: no store")
	}
	if cfg.Hostname == "" {
		cfg.Hostname, _ = os.Hostname()
	}
	if cfg.Poll <= 0 {
		cfg.Poll = DefaultPoll
	}
	if cfg.Settle <= 0 {
		cfg.Settle = DefaultSettle
	}
	if cfg.RetryMax <= 0 {
		cfg.RetryMax = 30 * time.Second
	}
	f := &Forwarder{cfg: cfg, d: d,
		format: Format{Hostname: cfg.Hostname, ProcID: strconv.Itoa(os.Getpid()), Version: cfg.Version, MaxSize: cfg.MaxSize},
		log:    cfg.Log.With().Str("component", "auditfwd").Str("syslog", d.name).Logger(),
	}
	return f, nil
}

// Name is the receiver's canonical URL, which names the cursor.
func (f *Forwarder) Name() string { return f.d.name }

// Start runs the forwarder until Close.
func (f *Forwarder) Start() {
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel, f.done = cancel, make(chan struct{})
	go func() {
		defer close(f.done)
		f.run(ctx)
	}()
}

// Close stops the forwarder and waits for it. Records written but not yet
// settled are sent again by the next run.
func (f *Forwarder) Close() {
	if f.cancel == nil {
		return
	}
	f.cancel()
	<-f.done
}

// Status is what /healthz reports about forwarding.
type Status struct {
	Target    string `json:"target"`
	Connected bool   `json:"connected"`
	Delivered int64  `json:"delivered_seq"` // the cursor
	Sent      int64  `json:"sent_seq"`
	Head      int64  `json:"head_seq"`
	Lag       int64  `json:"lag"` // records not yet delivered: head - delivered
	Error     string `json:"error,omitempty"`
}

// Status reports the forwarder's progress against the log's head.
func (f *Forwarder) Status(ctx context.Context) (Status, error) {
	head, _, err := f.cfg.Store.AuditHead(ctx)
	if err != nil {
		return Status{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return Status{Target: f.d.name, Connected: f.connected, Delivered: f.cursor, Sent: max(f.sent, f.cursor),
		Head: head, Lag: max(0, head-f.cursor), Error: f.lastErr}, nil
}

func (f *Forwarder) run(ctx context.Context) {
	bo := backoff.Backoff{Base: f.cfg.RetryBase, Max: f.cfg.RetryMax}
	var cursor int64
	for { // the cursor, read once
		var err error
		if cursor, err = f.cfg.Store.AuditCursor(ctx, f.d.name); err == nil {
			break
		}
		f.log.Error().Err(err).Msg("read the audit forwarding cursor; retrying")
		if bo.Wait(ctx) != nil {
			return
		}
	}
	f.mu.Lock()
	f.cursor, f.sent = cursor, cursor
	f.mu.Unlock()
	f.log.Info().Int64("cursor", cursor).Msg("audit forwarding started")
	bo.Reset()
	for ctx.Err() == nil {
		c, err := f.d.dial(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			f.setState(false, err)
			f.log.Warn().Err(err).Int("attempt", bo.Attempt()+1).Int64("delivered_seq", f.delivered()).
				Msg("connect to the syslog receiver; records wait in the relay's database until it is back")
			if bo.Wait(ctx) != nil {
				return
			}
			continue
		}
		f.setState(true, nil)
		f.log.Info().Int64("delivered_seq", f.delivered()).Msg("connected to the syslog receiver")
		err = f.session(ctx, c)
		c.Close()
		if ctx.Err() != nil {
			return
		}
		f.setState(false, err)
		f.log.Warn().Err(err).Int64("delivered_seq", f.delivered()).Msg("syslog receiver connection lost; resending from the last delivered record")
		if time.Since(c.since) > f.cfg.RetryMax {
			bo.Reset() // the connection had worked for a while
		}
		if bo.Wait(ctx) != nil {
			return
		}
	}
}

// pending is a record written on the connection but not yet delivered.
type pending struct {
	seq int64
	end int64 // the connection's byte count after it
	at  time.Time
}

// session sends records on c until c fails or ctx ends.
func (f *Forwarder) session(ctx context.Context, c *conn) error {
	c.since = time.Now()
	// The reader notices the receiver closing or resetting the connection
	// at once, not only at the next write. It ends when c is closed: the
	// caller closes c after session returns, and waits for it here first.
	dead := make(chan error, 1)
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		buf := make([]byte, 512)
		for {
			if _, err := c.Read(buf); err != nil {
				dead <- fmt.Errorf("the receiver closed the connection: %w", err)
				return
			}
		}
	}()
	defer func() { c.Close(); <-readDone }()

	f.mu.Lock()
	sent := f.cursor
	f.sent = sent
	f.mu.Unlock()
	var queue []pending
	tick := time.NewTicker(f.cfg.Poll)
	defer tick.Stop()
	for {
		recs, err := f.cfg.Store.QueryAudit(ctx, store.AuditQuery{After: sent, Limit: batch, Scope: store.Scope{All: true}})
		if err != nil {
			if ctx.Err() != nil {
				f.settle(c, queue, true)
				return nil
			}
			f.log.Error().Err(err).Msg("read audit records to forward")
		}
		if len(recs) > 0 {
			_ = c.SetWriteDeadline(time.Now().Add(writeTimeout))
			for _, r := range recs {
				if r.Seq != sent+1 {
					// Commits are in seq order on both engines; a gap is a
					// removed record, which audit verify names. Send on.
					f.log.Error().Int64("seq", r.Seq).Int64("expected", sent+1).Msg("audit log gap while forwarding: run patchbay audit verify")
				}
				if _, err := c.Write(Frame(f.format.Message(r))); err != nil {
					return fmt.Errorf("write record %d: %w", r.Seq, err)
				}
				sent = r.Seq
				queue = append(queue, pending{seq: r.Seq, end: c.written.Load(), at: time.Now()})
			}
			f.mu.Lock()
			f.sent = sent
			f.mu.Unlock()
		}
		queue = f.settle(c, queue, false)
		if len(recs) == batch {
			select {
			case err := <-dead:
				return err
			default:
				continue
			}
		}
		select {
		case err := <-dead:
			return err
		case <-ctx.Done():
			f.settle(c, queue, true)
			return nil
		case <-tick.C:
		}
	}
}

// settle moves the cursor past the records the receiver has: acknowledged
// by its TCP and written at least Settle ago (final: when the relay stops
// and everything is acknowledged, without waiting). It returns the records
// still pending.
func (f *Forwarder) settle(c *conn, queue []pending, final bool) []pending {
	acked, measured := c.acked()
	now := time.Now()
	n := 0
	for n < len(queue) && queue[n].end <= acked {
		if !final && now.Sub(queue[n].at) < f.cfg.Settle {
			break
		}
		if final && !measured {
			break
		}
		n++
	}
	if n == 0 {
		return queue
	}
	seq := queue[n-1].seq
	// Saved with its own context: a stopping relay still saves how far
	// the receiver got.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := f.cfg.Store.SetAuditCursor(ctx, f.d.name, seq, now); err != nil {
		f.log.Error().Err(err).Int64("seq", seq).Msg("save the audit forwarding cursor (records after the last saved one will be sent again)")
		return queue
	}
	f.mu.Lock()
	f.cursor = seq
	f.mu.Unlock()
	return queue[n:]
}

func (f *Forwarder) delivered() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cursor
}

func (f *Forwarder) setState(connected bool, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.connected = connected
	f.lastErr = ""
	if err != nil {
		f.lastErr = err.Error()
	}
}
