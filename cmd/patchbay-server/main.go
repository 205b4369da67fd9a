// Command patchbay-server is the Patchbay relay: it holds agent links,
// serves the technician API and enrollment, and keeps the fleet's state.
package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/patchbay/patchbay/certs"
	"github.com/patchbay/patchbay/internal/apiv1"
	"github.com/patchbay/patchbay/internal/logging"
	"github.com/patchbay/patchbay/server"
	"github.com/patchbay/patchbay/server/api"
	"github.com/patchbay/patchbay/server/auditfwd"
	"github.com/patchbay/patchbay/server/console"
	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	if err := rootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "patchbay-server:", err)
		os.Exit(1)
	}
}

func defaultDataDir() string {
	if d := os.Getenv("PATCHBAY_DATA"); d != "" {
		return d
	}
	return "data"
}

func rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "patchbay-server",
		Short: "The Patchbay relay: agents connect to it, technicians work through it",
		Long: `patchbay-server is the Patchbay relay. Endpoint agents hold one mutual-TLS
websocket to it; technicians and admins use it through the patchbay CLI.

Everything lives in one data directory (--data, default ./data or $PATCHBAY_DATA):
the CA and server certificate (keys 0600), and the SQLite database. The first
"serve" creates them. "backup" copies them (while the relay runs) into one
file; "restore" puts such a file into a new data directory.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(serveCmd(), adminTokenCmd(), fingerprintCmd(), tierKeyCmd(), backupCmd(), restoreCmd(), versionCmd())
	return root
}

func serveCmd() *cobra.Command {
	var (
		dataDir, listen, dbURL, logLevel, logFormat string
		hostnames                                   []string
		heartbeat                                   time.Duration
		reconnectRate                               int
		pprofAddr                                   string
		metricsListen                               string
		allowEmptyReason                            bool
		consoleIdle                                 time.Duration
		syslog                                      auditfwd.Target
		oidc                                        oidcFlags
		natsURL, natsCreds, natsCA, natsListen      string
		tierURL                                     string
		tierKeyFile                                 string
		releasesDir                                 string
		alertOfflineAfter                           time.Duration
	)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the relay",
		Long: `Run the relay until SIGINT or SIGTERM.

On first run it initialises the data directory: an ECDSA P-256 CA, a server
certificate for --hostname names (default: localhost, 127.0.0.1, ::1 and this
machine's hostname) and the database. It logs the CA fingerprint that agents
and technicians pin (also: patchbay-server fingerprint).

One relay per data directory: serve holds a lock on DATA/relay.lock while it
runs (patchbay-server restore refuses a directory in use). Back a relay up
while it runs with patchbay-server backup (see its --help).

Routes: /v1/agent/connect (agents, mutual TLS), /v1/enroll, /v1/... (API), /healthz,
/metrics (Prometheus; admin API token: Authorization: Bearer pbt_...),
/releases/ (with --releases: signed releases for installers and self-update).

Metrics: --metrics-listen ADDR also serves /metrics in plain HTTP on a
listener of its own with no authentication, for a monitoring system on a
private network (bind it to a private or loopback address; anyone who
reaches it reads agent counts, job and session activity and latencies).
The metrics (patchbay_agents_online, patchbay_agent_links_*,
patchbay_runs_finished_total, patchbay_jobs_*, patchbay_sessions_*,
patchbay_consent_decisions_total, patchbay_store_tx_seconds,
patchbay_bus_publish_seconds, go_*, process_*) are about this relay: in a
tier, sum them over the relays. deploy/grafana/patchbay.json is a sample
Grafana dashboard.

Audit forwarding: --syslog tls://HOST:PORT sends every audit record, as it
is written and from the first one on, to a syslog receiver as one RFC 5424
message (APP-NAME patchbay, MSGID the action, the record's seq, actor,
target, hash and details as structured data) over TLS with octet-counting
framing (RFC 5425). The receiver's certificate is checked against
--syslog-ca (default: the system's CAs); --syslog-cert and --syslog-key
present a client certificate to receivers that ask for one. tcp://HOST:PORT
sends the same without encryption (RFC 6587): only on a network you trust.
The relay never waits for the receiver: records are read from the database
after a cursor kept there, so an outage or a relay restart is caught up,
every record at least once and in order (a record may repeat across a
reconnect; its seq tells). /healthz reports the lag as audit_forward.

Single sign-on (OpenID Connect) is on when --oidc-issuer is set: register
Patchbay at the provider as a confidential web client whose redirect URI is
https://RELAY-HOST:PORT/console/oidc/callback, and map the provider's groups
to roles with --oidc-role-map (the highest role of a person's groups wins; a
person in no mapped group is refused). See the README's "Single sign-on".

Several relays (a tier): start each with the same PostgreSQL (--db
postgres://...), the same NATS (--nats) and a copy of the same tier key
(--tier-key-file, made once by "patchbay-server tier-key new FILE"). The
first relay stores its CA, SSH CAs and TLS ticket key in the database,
sealed with the tier key (AES-256-GCM; a dump of the database alone does not
give the CA); the others take them from there into their --data, which may
start empty. A relay set up alone before seeds an empty tier with its own CA.
--nats nats://HOST:PORT or tls://HOST:PORT connects to a
NATS server or cluster with JetStream (TLS is required outside loopback;
--nats-ca for a private CA, --nats-creds for a .creds file or a
user:password file). --nats embedded runs a nats-server inside this relay
on --nats-listen (loopback, default 127.0.0.1:4222), with JetStream in
DATA/nats and a generated user:password in DATA/nats-user (0600): the
other relays of the machine connect with --nats nats://127.0.0.1:PORT
--nats-creds (a copy of) DATA/nats-user. Agents online on any relay are
online on all; revoking an agent or a token acts on every relay. A session
asked for on one relay for an agent held by another is forwarded to that
relay at its --tier-url, over TLS verified against the tier's CA, with a
relay client certificate; that relay checks the technician's credential
again. Jobs still run only through the relay that holds the agent (README:
Several relays).`,
		Example: `  patchbay-server serve --data /var/lib/patchbay --listen :8443 --hostname relay.example.com
  patchbay-server tier-key new /etc/patchbay/tier.key
  patchbay-server serve --data /srv/relay-a --db postgres://patchbay@db/patchbay --nats embedded --listen :8443 \
    --tier-key-file /etc/patchbay/tier.key
  patchbay-server serve --data /srv/relay-b --db postgres://patchbay@db/patchbay --listen :8444 \
    --nats nats://127.0.0.1:4222 --nats-creds /srv/relay-a/nats-user --tier-key-file /etc/patchbay/tier.key
  patchbay-server serve --syslog tls://siem.example.com:6514 --syslog-ca /etc/patchbay/siem-ca.pem
  patchbay-server serve --data /var/lib/patchbay --oidc-issuer https://login.example.com/ --oidc-client-id patchbay \
    --oidc-client-secret-file /etc/patchbay/oidc-secret --oidc-allowed-domains example.com \
    --oidc-role-map 'helpdesk=technician,it-admins=admin,auditors=viewer'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := logging.Setup(os.Stderr, logLevel, logFormat)
			if err != nil {
				return err
			}
			if consoleIdle < time.Second {
				return fmt.Errorf("--console-idle-timeout %v: want at least 1s", consoleIdle)
			}
			// The relay's heap is mostly long-lived idle links plus short TLS
			// handshake garbage; a tighter GC target keeps RSS near the live
			// heap for a little CPU. GOGC in the environment still wins.
			if os.Getenv("GOGC") == "" {
				debug.SetGCPercent(50)
			}
			ssoCfg, err := oidc.config()
			if err != nil {
				return err
			}
			if natsURL != "" && tierURL == "" {
				if tierURL, err = server.DefaultTierURL(listen, hostnames); err != nil {
					return err
				}
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			// One relay per data directory; restore refuses a directory in use.
			if err := os.MkdirAll(dataDir, 0o700); err != nil {
				return fmt.Errorf("create data directory: %w", err)
			}
			lock, err := lockDataDir(dataDir)
			if err != nil {
				return err
			}
			defer lock.Close()
			srv, err := server.New(ctx, server.Config{
				DataDir: dataDir, DBURL: dbURL, Hostnames: hostnames, Heartbeat: heartbeat, ReconnectRate: reconnectRate,
				Version: version, Logger: log, AllowEmptyReason: allowEmptyReason, ConsoleIdleTimeout: consoleIdle,
				Syslog: syslog,
				SSO:    ssoCfg,
				NATS:   natsURL, NATSCreds: natsCreds, NATSCA: natsCA, NATSListen: natsListen,
				TierKeyFile: tierKeyFile, TierURL: tierURL,
				Releases:          releasesDir,
				AlertOfflineAfter: alertOfflineAfter,
			})
			if err != nil {
				return err
			}
			defer srv.Close()
			if metricsListen != "" {
				wait, err := serveMetrics(ctx, metricsListen, srv.MetricsHandler(), log)
				if err != nil {
					return err
				}
				defer wait()
			}
			if pprofAddr != "" {
				wait, err := servePprof(ctx, pprofAddr, log)
				if err != nil {
					return err
				}
				defer wait()
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("listen on %s: %w (is another relay running? choose another --listen)", listen, err)
			}
			err = srv.Serve(ctx, ln)
			log.Info().Msg("relay stopped")
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&dataDir, "data", defaultDataDir(), "data directory (CA, certificates, database)")
	f.StringVar(&listen, "listen", ":8443", "address to listen on for HTTPS and agent links")
	f.StringVar(&dbURL, "db", "", dbFlagHelp)
	f.StringSliceVar(&hostnames, "hostname", nil, "DNS name or IP for the server certificate (repeatable; default localhost, 127.0.0.1, ::1, hostname)")
	f.DurationVar(&heartbeat, "heartbeat", server.DefaultHeartbeat, "agent ping interval; an agent silent for 3 intervals is offline")
	f.IntVar(&reconnectRate, "reconnect-rate", server.DefaultReconnectRate, "agents per second this relay can take back after a restart; agents spread their reconnects over fleet/rate seconds (1s-60s), fleet being the agents online or seen or enrolled in the last week")
	f.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	f.StringVar(&logFormat, "log-format", "auto", "auto (console on a terminal, else JSON), json or console")
	f.StringVar(&pprofAddr, "pprof", os.Getenv("PATCHBAY_PPROF"), "serve Go profiles (net/http/pprof) on this loopback address, e.g. 127.0.0.1:6060 (default $PATCHBAY_PPROF; off)")
	f.StringVar(&metricsListen, "metrics-listen", "", "also serve Prometheus /metrics on this address in plain HTTP, WITHOUT authentication: only on a private network or loopback, e.g. 10.0.0.5:9464 (default: off; the main listener serves /metrics to admin tokens)")
	f.DurationVar(&alertOfflineAfter, "alert-offline-after", 30*time.Minute, "open an agent_offline alert for an agent offline longer than this, resolved when it is back (0: never; see patchbay alerts --help)")
	f.DurationVar(&consoleIdle, "console-idle-timeout", console.DefaultIdleTimeout, "end a web console session after this long without a request (at least 1s)")
	f.StringVar(&syslog.URL, "syslog", "", "forward every audit record to this syslog receiver: tls://HOST:PORT (RFC 5425), or tcp://HOST:PORT unencrypted")
	f.StringVar(&syslog.CAFile, "syslog-ca", "", "PEM file of the CA(s) that sign the syslog receiver's certificate (default: the system's)")
	f.StringVar(&syslog.CertFile, "syslog-cert", "", "PEM client certificate for a syslog receiver that requires one (with --syslog-key)")
	f.StringVar(&syslog.KeyFile, "syslog-key", "", "PEM private key of --syslog-cert")
	f.BoolVar(&allowEmptyReason, "allow-empty-reason", false, "accept session requests without a reason (by default technicians must give one: the user at the machine is shown it)")
	f.StringVar(&natsURL, "nats", "", "join a tier of relays (with a shared --db postgres://...) through NATS: nats://HOST:PORT or tls://HOST:PORT (TLS outside loopback; several comma-separated for a cluster), or \"embedded\" to run a nats-server in this relay (default: none, a relay alone)")
	f.StringVar(&natsCreds, "nats-creds", "", "NATS credentials: a .creds file (JWT and NKey, as nsc writes it) or a file with one line user:password (what --nats embedded writes to DATA/nats-user)")
	f.StringVar(&natsCA, "nats-ca", "", "PEM file of the CA that signs the NATS server's certificate (turns TLS on; default: the system's CAs with tls://)")
	f.StringVar(&natsListen, "nats-listen", "", "with --nats embedded: the loopback address the NATS server listens on (default 127.0.0.1:4222)")
	f.StringVar(&tierURL, "tier-url", "", "with --nats: https://HOST:PORT where the other relays of the tier reach this one to forward sessions to its agents (HOST must be a --hostname; default: the first --hostname, else --listen's address, else this machine's host name, with --listen's port)")
	f.StringVar(&tierKeyFile, "tier-key-file", "", "with --db postgres://...: the tier key (0600; made once by \"patchbay-server tier-key new FILE\", a copy on every relay of the tier) that seals the CA, SSH CAs and TLS ticket key the relays share through the database (required there)")
	f.StringVar(&releasesDir, "releases", "", "serve the organisation's signed releases from this directory (one subdirectory per version, as make release writes dist/VERSION) at /releases/, for agent installers and self-updates; the relay never signs them, agents check the signature")
	oidc.register(f)
	return cmd
}

// dbFlagHelp documents --db: SQLite by default, PostgreSQL for a tier of relays.
const dbFlagHelp = "database: a SQLite file (default: patchbay.db in --data), or a PostgreSQL database shared by " +
	"several relays as postgres://USER@HOST:PORT/DATABASE?sslmode=verify-full (it must exist; the schema is " +
	"created or migrated at start; the password may come from PGPASSWORD or ~/.pgpass rather than the URL; serve then needs --tier-key-file)"

func adminTokenCmd() *cobra.Command {
	var dataDir, dbURL, name, ttl string
	cmd := &cobra.Command{
		Use:   "admin-token",
		Short: "Print a fresh admin API token",
		Long: `Create an API token with the admin role directly in the relay's database and
print it alone on stdout. This is how the first admin gets in (then:
patchbay login); it needs filesystem access to the data directory, and is
recorded in the audit log. Works while the relay runs.`,
		Example: `  patchbay-server admin-token --data /var/lib/patchbay`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var d time.Duration
			if ttl != "" {
				var err error
				if d, err = apiv1.ParseTTL(ttl, api.MaxAPITokenTTL); err != nil {
					return err
				}
			}
			if _, err := os.Stat(filepath.Join(dataDir, certs.CACertFile)); err != nil {
				return fmt.Errorf("no relay in %s: run patchbay-server serve --data %s first", dataDir, dataDir)
			}
			ctx := cmd.Context()
			st, err := server.OpenStore(ctx, dataDir, dbURL)
			if err != nil {
				return err
			}
			defer st.Close()
			if name == "" {
				name = "admin-" + time.Now().UTC().Format("20060102-150405")
			}
			secret, _, err := api.MintAPIToken(ctx, st, "local admin (patchbay-server admin-token)", "admin", name, d, time.Now().UTC())
			if err != nil {
				return err
			}
			fmt.Println(secret)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&dataDir, "data", defaultDataDir(), "data directory of the relay")
	f.StringVar(&dbURL, "db", "", dbFlagHelp)
	f.StringVar(&name, "name", "", "name recorded for the token (default admin-<time>)")
	f.StringVar(&ttl, "ttl", "", "expiry, e.g. 12h or 30d (default: never)")
	return cmd
}

func fingerprintCmd() *cobra.Command {
	var dataDir string
	cmd := &cobra.Command{
		Use:   "fingerprint",
		Short: "Print the CA fingerprint that agents and technicians pin",
		Long: `Print sha256:<hex SHA-256 of the CA certificate's DER>. Give it to
patchbay-agent enroll --ca-fingerprint and patchbay login --ca-fingerprint.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pemBytes, err := os.ReadFile(filepath.Join(dataDir, certs.CACertFile))
			if errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("no CA in %s: run patchbay-server serve --data %s first", dataDir, dataDir)
			}
			if err != nil {
				return err
			}
			cert, err := certs.ParseCertPEM(pemBytes)
			if err != nil {
				return err
			}
			fmt.Println(certs.Fingerprint(cert))
			return nil
		},
	}
	cmd.Flags().StringVar(&dataDir, "data", defaultDataDir(), "data directory of the relay")
	return cmd
}

func versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		Run:   func(*cobra.Command, []string) { fmt.Println(version) },
	}
}
