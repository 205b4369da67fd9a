#!/bin/sh
# make bench: run the relay benchmark and rewrite docs/benchmarks.md.
# Needs `make build` first (the Makefile does it). Five parts, all by default:
#   fleet     19,000 simulated agents: memory, idle CPU, reconnect, jobs, Go
#             micro-benchmarks (about 5 minutes);
#   sessions  interactive sessions against a fresh relay and 50 real
#             patchbay-agent processes: setup latency, relayed stream and SSH
#             throughput, scp with stock OpenSSH, keystroke round trip with
#             1,000 terminal sessions (about 2 minutes);
#   consent   the consent helper (issue 13) on a real X display: technician's
#             request -> prompt window mapped, p99 of 50, against zenity
#             started directly; the idle helper's RSS and CPU against a
#             minimal Go program (about 3 minutes). Needs root (it creates
#             and removes a local user) and Xvfb, zenity, xdotool and xev
#             (Debian: xvfb zenity xdotool x11-utils);
#   console   the web console (issue 12) in Debian's headless Chromium: the
#             Fleet screen with 19,000 agents (time to first rows, memory)
#             against a 10-agent relay, the browser terminal's keystroke
#             round trip next to patchbay ssh's, and the remote desktop's
#             frames per second through the relay against x11vnc directly
#             (about 5 minutes). Needs chromium, xvfb, x11vnc and
#             x11-xserver-utils (xsetroot);
#   auth      password sign-ins (issue 15) against a fresh relay with 500
#             simulated agents: one argon2id login's CPU cost, then another
#             user's API and login latency, jobs and agents online while a
#             separate process sends 1,000 wrong passwords a second from one
#             address and then from 254, next to the same figures idle; the
#             relay's 401s and 429s and its CPU (about 3 minutes);
#   tier      only with BENCH_ONLY=tier (issue 14): a PostgreSQL started for
#             the run, a no-op job over BENCH_TIER_AGENTS (default 10000)
#             simulated agents on one relay on it, then spread evenly over
#             BENCH_TIER_RELAYS (default 3) relays sharing it (embedded NATS
#             in the first): time and relay CPU per agent round trip, the
#             agents each relay holds, RSS and idle CPU, and the time for a
#             SIGKILLed relay's agents to be back on the others (about 3
#             minutes with 10,000). Needs the Debian package postgresql.
#   tiersession only with BENCH_ONLY=tiersession (issue 14): relays A and B
#             on a PostgreSQL started for the run, one real patchbay-agent on
#             A only, scp of a 512 MiB file (--scp-mib) from and to it with
#             stock OpenSSH through `patchbay ssh-config` against A, then
#             against B (B forwards the session to A): MB/s, B / A against
#             0.8x, CPU of both relays (about 1 minute). Needs postgresql
#             and openssh-client.
#   sizes     only with BENCH_ONLY=sizes (issue 16): runs `make release` (no
#             signing) and reports the size of the agent, CLI and relay
#             binaries per platform from dist/VERSION, the Linux agent against
#             the 25 MB target (the release build takes minutes).
#   inventory only with BENCH_ONLY=inventory (issue 17): BENCH_INVENTORY_AGENTS
#             (default 19000) agents with BENCH_INVENTORY_PACKAGES (default
#             1500) packages each stored by server/store on SQLite and on a
#             PostgreSQL started for the run: time per round (first,
#             unchanged, one upgrade each), database size, and
#             software=openssl,software.version<3.0.14 against 200 ms. Needs
#             the Debian package postgresql and a few GiB of disk.
#   upgrade   only with BENCH_ONLY=upgrade (issue 16): a release signed in the
#             run (stand-in agent binary, BENCH_UPGRADE_BINARY_KIB, default
#             1024), a fresh relay serving it, BENCH_UPGRADE_AGENTS (default
#             10000) simulated agents in BENCH_PROCS processes, a no-op job
#             over them (the floor), then `patchbay agents upgrade` with a 1 %
#             canary: time to complete, relay CPU and peak RSS; each agent
#             downloads and verifies the release over HTTPS, reconnects with
#             the new version and reports (about 3 minutes with 10,000).
#   checks    only with BENCH_ONLY=checks (issue 17): a relay on a PostgreSQL
#             started for the run, BENCH_CHECKS_AGENTS (default 19000)
#             simulated agents in BENCH_PROCS processes, one policy whose
#             result each agent reports every 60 s (spread): relay CPU and
#             database rows written, commits and WAL per second idle, with
#             every result passing (target: no write for unchanged results)
#             and with 1 % of results changing state (2 minutes each; about
#             10 minutes with 19,000). Needs the Debian package postgresql.
# Run one part alone with BENCH_ONLY=fleet|sessions|consent|console|auth|tier|tiersession|sizes|inventory|upgrade|checks (or --only); it
# rewrites only its own section of docs/benchmarks.md and keeps the others':
#   BENCH_ONLY=consent make bench      or      bench/run.sh --only consent
# Overrides: BENCH_AGENTS (default 19000), BENCH_PROCS (default 4), GO
# (default go); extra arguments go to `patchbay-loadgen bench` (see its
# --help, e.g. --keystroke-sessions, --stream-mib, --session-agents).
# Cached relay data and identities live in bench/.cache (delete to start over).
set -eu
cd "$(dirname "$0")/.."
# A relay taking back 19,000 agents needs a kernel accept queue larger than the
# usual 4096, or dropped SYNs add 1-7 s retransmit waves to the reconnect time.
q=$(cat /proc/sys/net/core/somaxconn 2>/dev/null || echo 0)
if [ "$q" -lt 16384 ]; then
	echo "bench: net.core.somaxconn is $q; for relay-like figures run as root:" >&2
	echo "       sysctl -w net.core.somaxconn=65535 net.ipv4.tcp_max_syn_backlog=65535" >&2
fi
if [ "${BENCH_ONLY:-}" = sizes ]; then
	version=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
	${MAKE:-make} --no-print-directory release VERSION="$version" RELEASE_KEY=
	set -- --release-dir "dist/$version" "$@"
fi
exec bin/patchbay-loadgen bench \
	--out docs/benchmarks.md \
	--server-bin bin/patchbay-server \
	--agents "${BENCH_AGENTS:-19000}" \
	--procs "${BENCH_PROCS:-4}" \
	--go "${GO:-go}" \
	--only "${BENCH_ONLY:-all}" \
	--tier-agents "${BENCH_TIER_AGENTS:-10000}" \
	--tier-relays "${BENCH_TIER_RELAYS:-3}" \
	--inventory-agents "${BENCH_INVENTORY_AGENTS:-19000}" \
	--inventory-packages "${BENCH_INVENTORY_PACKAGES:-1500}" \
	--upgrade-agents "${BENCH_UPGRADE_AGENTS:-10000}" \
	--upgrade-binary-kib "${BENCH_UPGRADE_BINARY_KIB:-1024}" \
	--checks-agents "${BENCH_CHECKS_AGENTS:-19000}" \
	"$@"
