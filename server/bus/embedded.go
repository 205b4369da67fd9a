package bus

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/rs/zerolog"

	"github.com/patchbay/patchbay/internal/atomicfile"
)

// Files of an embedded NATS server in the relay's data directory.
const (
	// EmbeddedCredsFile holds "user:password" (0600), generated on the
	// first start; other relays pass a copy to --nats-creds.
	EmbeddedCredsFile = "nats-user"
	// EmbeddedStoreDir holds the JetStream data.
	EmbeddedStoreDir = "nats"
	// DefaultEmbeddedListen is where an embedded server listens by default.
	DefaultEmbeddedListen = "127.0.0.1:4222"
	embeddedUser          = "patchbay"
)

// EmbeddedConfig configures an in-process nats-server.
type EmbeddedConfig struct {
	DataDir string // the relay's data directory
	Listen  string // loopback HOST:PORT; default DefaultEmbeddedListen
	Log     zerolog.Logger
}

// Embedded is a nats-server running in the relay's process, with
// JetStream, that accepts only the user in its credentials file. It
// listens on loopback only: relays on other machines need a NATS server of
// their own, with TLS.
//
// Ownership: StartEmbedded starts the server's goroutines; Close shuts it
// down and waits for them.
type Embedded struct {
	ns   *server.Server
	once sync.Once
	// URL is the client URL (nats://127.0.0.1:PORT) and CredsFile the
	// credentials file: what DialNATS and the other relays need.
	URL, CredsFile string
}

// StartEmbedded starts the server and returns once it accepts clients.
func StartEmbedded(cfg EmbeddedConfig) (*Embedded, error) {
	if cfg.Listen == "" {
		cfg.Listen = DefaultEmbeddedListen
	}
	host, portStr, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("embedded NATS: listen address %q: want HOST:PORT, e.g. %s", cfg.Listen, DefaultEmbeddedListen)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return nil, fmt.Errorf("embedded NATS: listen address %q: bad port", cfg.Listen)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	if !isLoopback(host) {
		return nil, fmt.Errorf("embedded NATS: listen address %s is not loopback: the embedded server serves relays of one machine; "+
			"for relays on several machines run a NATS server with TLS and give --nats tls://HOST:PORT", cfg.Listen)
	}
	credsPath := filepath.Join(cfg.DataDir, EmbeddedCredsFile)
	password, err := loadOrCreatePassword(credsPath)
	if err != nil {
		return nil, err
	}
	ns, err := server.NewServer(&server.Options{
		ServerName: "patchbay-embedded",
		Host:       host,
		Port:       port,
		Users:      []*server.User{{Username: embeddedUser, Password: password}},
		JetStream:  true,
		StoreDir:   filepath.Join(cfg.DataDir, EmbeddedStoreDir),
		NoSigs:     true,
	})
	if err != nil {
		return nil, fmt.Errorf("embedded NATS: %w", err)
	}
	ns.SetLoggerV2(natsLogger{cfg.Log}, false, false, false)
	ns.Start()
	if !ns.ReadyForConnections(30 * time.Second) {
		ns.Shutdown()
		ns.WaitForShutdown()
		return nil, fmt.Errorf("embedded NATS: not ready on %s within 30s (is the port taken? choose another --nats-listen)", cfg.Listen)
	}
	return &Embedded{ns: ns, URL: ns.ClientURL(), CredsFile: credsPath}, nil
}

// Close shuts the server down and waits until it has stopped.
func (e *Embedded) Close() {
	e.once.Do(func() {
		e.ns.Shutdown()
		e.ns.WaitForShutdown()
	})
}

// loadOrCreatePassword reads the password from the credentials file,
// creating the file (0600, atomically) on first use.
func loadOrCreatePassword(path string) (string, error) {
	raw, err := os.ReadFile(path)
	switch {
	case err == nil:
		user, pass, ok := strings.Cut(strings.TrimSpace(string(raw)), ":")
		if !ok || user != embeddedUser || len(pass) < 32 {
			return "", fmt.Errorf("embedded NATS: %s is not %s:PASSWORD; delete it to generate a new one (and give the other relays the new copy)", path, embeddedUser)
		}
		return pass, nil
	case !errors.Is(err, os.ErrNotExist):
		return "", fmt.Errorf("embedded NATS: read credentials: %w", err)
	}
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	pass := hex.EncodeToString(b[:])
	if err := atomicfile.WriteSecret(path, []byte(embeddedUser+":"+pass+"\n")); err != nil {
		return "", fmt.Errorf("embedded NATS: write credentials: %w", err)
	}
	return pass, nil
}

// natsLogger sends the embedded server's log to zerolog; its notices are
// debug lines, its warnings and errors ours.
type natsLogger struct{ log zerolog.Logger }

func (l natsLogger) Noticef(format string, v ...any) {
	l.log.Debug().Str("component", "nats").Msgf(format, v...)
}
func (l natsLogger) Warnf(format string, v ...any) {
	l.log.Warn().Str("component", "nats").Msgf(format, v...)
}
func (l natsLogger) Fatalf(format string, v ...any) {
	l.log.Error().Str("component", "nats").Msgf(format, v...)
}
func (l natsLogger) Errorf(format string, v ...any) {
	l.log.Error().Str("component", "nats").Msgf(format, v...)
}
func (l natsLogger) Debugf(format string, v ...any) {
	l.log.Debug().Str("component", "nats").Msgf(format, v...)
}
func (l natsLogger) Tracef(format string, v ...any) {
	l.log.Trace().Str("component", "nats").Msgf(format, v...)
}
