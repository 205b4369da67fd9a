package presence

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// Bucket is the JetStream key-value bucket of a tier's presence.
const Bucket = "patchbay_presence"

// Limits.
const (
	// MinTTL is the shortest TTL a bucket takes (JetStream's limit on
	// expiry markers).
	MinTTL = time.Second
	// refreshBatch is how many keys one refresh publishes before waiting
	// for the server's acknowledgements.
	refreshBatch = 1000
	opTimeout    = 5 * time.Second
)

// validKey is what an agent ID must look like to be a key (a UUID does).
var validKey = regexp.MustCompile(`^[-_=.a-zA-Z0-9]+$`)

// Config configures a KV presence.
type Config struct {
	Conn *nats.Conn // the bus's connection (bus.NATS.Conn)
	// Node is this relay's ID in the tier, unique per process.
	Node string
	// TTL is how long a key lives without a refresh: a lost relay's agents
	// are offline everywhere after at most TTL. Use 3 heartbeats.
	TTL time.Duration
	// Here reports whether this relay holds the agent (hub.Online).
	Here func(id string) bool
	Log  zerolog.Logger
}

// KV is the presence of a tier of relays, in a JetStream key-value bucket.
// It is safe for concurrent use.
//
// Ownership: NewKV starts two goroutines, the writer (puts, deletes and
// refreshes this relay's keys) and the watcher (keeps the bucket in
// memory); Close stops both and waits for them.
type KV struct {
	cfg       Config
	js        jetstream.JetStream
	kv        jetstream.KeyValue
	bucketCfg jetstream.KeyValueConfig
	subject   string // prefix of a key's subject

	mu      sync.Mutex
	local   map[string]struct{}  // agents this relay holds, to refresh
	pending map[string]bool      // changes to write: true online, false offline
	seen    map[string]seenEntry // the bucket, as watched
	failing bool                 // the last write failed (logged once)

	wake   chan struct{}
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

type seenEntry struct {
	node    string
	expires time.Time
}

// NewKV creates or updates the bucket, loads it and starts the writer and
// the watcher.
func NewKV(ctx context.Context, cfg Config) (*KV, error) {
	if cfg.TTL < MinTTL {
		return nil, fmt.Errorf("presence: TTL %v: at least %v", cfg.TTL, MinTTL)
	}
	if cfg.Node == "" || cfg.Here == nil || cfg.Conn == nil {
		return nil, errors.New("presence: Conn, Node and Here are required")
	}
	js, err := jetstream.New(cfg.Conn)
	if err != nil {
		return nil, fmt.Errorf("presence: %w", err)
	}
	kvCfg := jetstream.KeyValueConfig{
		Bucket:         Bucket,
		Description:    "Patchbay: which relay holds which agent",
		History:        1,
		TTL:            cfg.TTL,
		LimitMarkerTTL: cfg.TTL, // watchers learn of expired keys
		Storage:        jetstream.FileStorage,
	}
	cctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	kv, err := js.CreateOrUpdateKeyValue(cctx, kvCfg)
	if errors.Is(err, jetstream.ErrLimitMarkerTTLNotSupported) {
		kvCfg.LimitMarkerTTL = 0 // an older server: expiry is checked on read
		kv, err = js.CreateOrUpdateKeyValue(cctx, kvCfg)
	}
	if err != nil {
		return nil, fmt.Errorf("presence: create the JetStream bucket %s: %w (does the NATS server run JetStream, and may this user use it?)", Bucket, err)
	}
	p := &KV{cfg: cfg, js: js, kv: kv, bucketCfg: kvCfg, subject: "$KV." + Bucket + ".",
		local: map[string]struct{}{}, pending: map[string]bool{}, seen: map[string]seenEntry{},
		wake: make(chan struct{}, 1)}
	runCtx, stop := context.WithCancel(context.Background())
	p.cancel = stop
	w, err := kv.WatchAll(runCtx)
	if err != nil {
		stop()
		return nil, fmt.Errorf("presence: watch the bucket %s: %w", Bucket, err)
	}
	ready := make(chan struct{})
	p.wg.Go(func() { p.watch(runCtx, w, ready) })
	select {
	case <-ready:
	case <-ctx.Done():
		p.Close()
		return nil, fmt.Errorf("presence: load the bucket %s: %w", Bucket, ctx.Err())
	}
	p.wg.Go(func() { p.write(runCtx) })
	return p, nil
}

// Online reports whether the agent is connected to a relay of the tier.
func (p *KV) Online(id string) bool {
	_, ok := p.Where(id)
	return ok
}

// Where returns the node ID of the relay that holds the agent.
func (p *KV) Where(id string) (node string, ok bool) {
	if p.cfg.Here(id) {
		return p.cfg.Node, true
	}
	p.mu.Lock()
	e, ok := p.seen[id]
	p.mu.Unlock()
	// This node's own stale key (the agent has just left) does not count.
	if !ok || e.node == p.cfg.Node || !time.Now().Before(e.expires) {
		return "", false
	}
	return e.node, true
}

// Connected records that this relay now holds the agent. It does not
// block: the writer publishes it.
func (p *KV) Connected(id string) { p.set(id, true) }

// Disconnected records that this relay no longer holds the agent; its key
// is deleted unless another relay has taken it meanwhile.
func (p *KV) Disconnected(id string) { p.set(id, false) }

func (p *KV) set(id string, online bool) {
	if !validKey.MatchString(id) {
		p.cfg.Log.Error().Str("agent_id", id).Msg("presence: agent ID is not a valid key; not recorded")
		return
	}
	p.mu.Lock()
	if online {
		p.local[id] = struct{}{}
	} else {
		delete(p.local, id)
	}
	p.pending[id] = online
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Close stops the writer and the watcher, after a last attempt (bounded)
// at writing what is pending, so that a relay that stops cleanly takes its
// agents offline at once.
func (p *KV) Close() {
	p.cancel()
	p.wg.Wait()
}

// watch keeps seen up to date until ctx ends; it closes ready once the
// bucket's current keys are loaded. After NATS reconnects it watches
// afresh: the old watcher would take several missed heartbeats to notice
// that its consumer is gone.
func (p *KV) watch(ctx context.Context, w jetstream.KeyWatcher, ready chan struct{}) {
	reconnected := p.cfg.Conn.StatusChanged(nats.CONNECTED)
	defer p.cfg.Conn.RemoveStatusListener(reconnected)
	stop := func() {
		if w == nil {
			return
		}
		_ = w.Stop()
		for range w.Updates() { // until the watcher closes it
		}
		w = nil
	}
	defer stop()
	var updates <-chan jetstream.KeyValueEntry
	if w != nil {
		updates = w.Updates()
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-reconnected:
			stop()
			nw, err := p.kv.WatchAll(ctx)
			if err != nil {
				// Keys already seen still expire; the next reconnection
				// tries again.
				p.cfg.Log.Error().Err(err).Msg("presence: watch the bucket again after a reconnection")
				updates = nil
				continue
			}
			w, updates = nw, nw.Updates()
		case e, ok := <-updates:
			if !ok {
				w, updates = nil, nil
				continue
			}
			if e == nil {
				if ready != nil {
					close(ready)
					ready = nil
				}
				continue
			}
			p.mu.Lock()
			if e.Operation() == jetstream.KeyValuePut {
				p.seen[e.Key()] = seenEntry{node: string(e.Value()), expires: time.Now().Add(p.cfg.TTL)}
			} else {
				delete(p.seen, e.Key())
			}
			p.mu.Unlock()
		}
	}
}

// write publishes pending changes as they come and refreshes this relay's
// keys every TTL/3, until ctx ends; then it writes what is pending once
// more.
func (p *KV) write(ctx context.Context) {
	tick := time.NewTicker(p.cfg.TTL / 3)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			final, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			p.flush(final)
			cancel()
			return
		case <-p.wake:
			p.flush(ctx)
		case <-tick.C:
			p.refresh(ctx)
		}
	}
}

// flush writes the pending changes.
func (p *KV) flush(ctx context.Context) {
	p.mu.Lock()
	pending := p.pending
	p.pending = map[string]bool{}
	p.mu.Unlock()
	if len(pending) == 0 {
		return
	}
	var up []string
	var err error
	for id, online := range pending {
		if online {
			up = append(up, id)
		} else if derr := p.remove(ctx, id); derr != nil {
			err = derr
		}
	}
	if perr := p.put(ctx, up); perr != nil {
		err = perr
	}
	p.report(err)
}

// refresh puts every agent this relay still holds again.
func (p *KV) refresh(ctx context.Context) {
	p.mu.Lock()
	ids := make([]string, 0, len(p.local))
	for id := range p.local {
		ids = append(ids, id)
	}
	p.mu.Unlock()
	held := ids[:0]
	for _, id := range ids {
		if p.cfg.Here(id) {
			held = append(held, id)
			continue
		}
		// Revoked or gone without Disconnected: stop refreshing.
		p.mu.Lock()
		if _, pend := p.pending[id]; !pend {
			delete(p.local, id)
		}
		p.mu.Unlock()
	}
	if len(held) == 0 {
		return
	}
	p.mu.Lock()
	failing := p.failing
	p.mu.Unlock()
	if failing {
		// The bucket may be gone with a NATS server that lost its data.
		cctx, cancel := context.WithTimeout(ctx, opTimeout)
		_, err := p.js.CreateOrUpdateKeyValue(cctx, p.bucketCfg)
		cancel()
		if err != nil {
			p.report(fmt.Errorf("presence: create the bucket %s again: %w", Bucket, err))
			return
		}
	}
	p.report(p.put(ctx, held))
}

// put publishes this node as the holder of ids, in batches, and waits for
// the server's acknowledgements.
func (p *KV) put(ctx context.Context, ids []string) error {
	node := []byte(p.cfg.Node)
	for len(ids) > 0 {
		n := min(len(ids), refreshBatch)
		futures := make([]jetstream.PubAckFuture, 0, n)
		for _, id := range ids[:n] {
			f, err := p.js.PublishAsync(p.subject+id, node)
			if err != nil {
				return fmt.Errorf("presence: publish %s: %w", id, err)
			}
			futures = append(futures, f)
		}
		ids = ids[n:]
		wait, cancel := context.WithTimeout(ctx, opTimeout)
		select {
		case <-p.js.PublishAsyncComplete():
		case <-wait.Done():
		}
		cancel()
		for _, f := range futures {
			select {
			case <-f.Ok():
			case err := <-f.Err():
				return fmt.Errorf("presence: put %s: %w", f.Msg().Subject, err)
			default:
				return fmt.Errorf("presence: put %s: no acknowledgement from JetStream within %v", f.Msg().Subject, opTimeout)
			}
		}
	}
	return nil
}

// remove deletes the agent's key if it still names this node.
func (p *KV) remove(ctx context.Context, id string) error {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	e, err := p.kv.Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("presence: read %s: %w", id, err)
	}
	if string(e.Value()) != p.cfg.Node {
		return nil // another relay holds it now
	}
	err = p.kv.Delete(ctx, id, jetstream.LastRevision(e.Revision()))
	if err != nil && !errors.Is(err, jetstream.ErrKeyExists) { // ErrKeyExists: it changed meanwhile
		return fmt.Errorf("presence: delete %s: %w", id, err)
	}
	return nil
}

// report logs the first failure of a run of failures and the recovery.
func (p *KV) report(err error) {
	p.mu.Lock()
	was := p.failing
	p.failing = err != nil
	p.mu.Unlock()
	switch {
	case err != nil && !was:
		p.cfg.Log.Warn().Err(err).Msg("presence: cannot write to NATS; other relays may see this relay's agents offline until it is back")
	case err == nil && was:
		p.cfg.Log.Info().Msg("presence: writing to NATS again")
	}
}
