package presence

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// RelaysBucket is the JetStream key-value bucket where each relay of a tier
// advertises the URL other relays reach it at (key: node ID, value: URL).
const RelaysBucket = "patchbay_relays"

// RelaysConfig configures Relays.
type RelaysConfig struct {
	Conn *nats.Conn
	Node string // this relay's node ID
	URL  string // https://HOST:PORT, where the other relays reach this one
	// TTL is how long an entry lives without a refresh (refreshed every
	// TTL/3); a lost relay's entry expires with its agents' presence.
	TTL time.Duration
	Log zerolog.Logger
}

// Relays advertises this relay's URL to the tier and looks up the others'.
//
// Ownership: NewRelays starts one goroutine that refreshes this relay's
// entry; Close stops it, waits for it and deletes the entry.
type Relays struct {
	cfg    RelaysConfig
	kv     jetstream.KeyValue
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// NewRelays creates or updates the bucket, writes this relay's entry and
// starts refreshing it.
func NewRelays(ctx context.Context, cfg RelaysConfig) (*Relays, error) {
	if cfg.TTL < MinTTL {
		return nil, fmt.Errorf("relay addresses: TTL %v: at least %v", cfg.TTL, MinTTL)
	}
	if cfg.Conn == nil || !validKey.MatchString(cfg.Node) || cfg.URL == "" {
		return nil, fmt.Errorf("relay addresses: Conn, a node ID of [-_=.a-zA-Z0-9] (got %q) and URL are required", cfg.Node)
	}
	js, err := jetstream.New(cfg.Conn)
	if err != nil {
		return nil, fmt.Errorf("relay addresses: %w", err)
	}
	cctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	kv, err := js.CreateOrUpdateKeyValue(cctx, jetstream.KeyValueConfig{
		Bucket:      RelaysBucket,
		Description: "Patchbay: the URL each relay of the tier is reached at",
		History:     1,
		TTL:         cfg.TTL,
		Storage:     jetstream.FileStorage,
	})
	if err != nil {
		return nil, fmt.Errorf("relay addresses: create the JetStream bucket %s: %w (does the NATS server run JetStream, and may this user use it?)", RelaysBucket, err)
	}
	if _, err := kv.Put(cctx, cfg.Node, []byte(cfg.URL)); err != nil {
		return nil, fmt.Errorf("relay addresses: write this relay's URL: %w", err)
	}
	r := &Relays{cfg: cfg, kv: kv}
	runCtx, stop := context.WithCancel(context.Background())
	r.cancel = stop
	r.wg.Go(func() { r.refresh(runCtx) })
	return r, nil
}

// refresh writes this relay's entry every TTL/3 until ctx ends.
func (r *Relays) refresh(ctx context.Context) {
	tick := time.NewTicker(r.cfg.TTL / 3)
	defer tick.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		cctx, cancel := context.WithTimeout(ctx, opTimeout)
		_, err := r.kv.Put(cctx, r.cfg.Node, []byte(r.cfg.URL))
		cancel()
		switch {
		case err != nil && !failing && ctx.Err() == nil:
			r.cfg.Log.Warn().Err(err).Msg("relay addresses: cannot write this relay's URL to NATS; sessions from other relays cannot reach its agents until it is back")
		case err == nil && failing:
			r.cfg.Log.Info().Msg("relay addresses: writing to NATS again")
		}
		failing = err != nil
	}
}

// URL returns the URL of the relay with the given node ID.
func (r *Relays) URL(ctx context.Context, node string) (string, error) {
	if !validKey.MatchString(node) {
		return "", fmt.Errorf("relay addresses: node ID %q is not a valid key", node)
	}
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	e, err := r.kv.Get(ctx, node)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return "", fmt.Errorf("relay %s has advertised no URL in the bucket %s (it is gone, or cannot reach NATS)", node, RelaysBucket)
	}
	if err != nil {
		return "", fmt.Errorf("relay addresses: read %s: %w", node, err)
	}
	return string(e.Value()), nil
}

// Close stops the refresh and deletes this relay's entry (bounded).
func (r *Relays) Close() {
	r.cancel()
	r.wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = r.kv.Delete(ctx, r.cfg.Node)
}
