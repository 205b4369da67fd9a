#!/usr/bin/env bash
# `make run`: a relay with its data under ./data and one demo agent enrolled
# from this checkout. Ctrl-C stops both. Run it again and it reuses ./data
# (same CA, same agent, same CLI login).
set -euo pipefail
cd "$(dirname "$0")/.."

DATA=${PATCHBAY_DEMO_DATA:-$PWD/data}
PORT=${PATCHBAY_DEMO_PORT:-8443}
URL="https://localhost:$PORT"
BIN=$PWD/bin
mkdir -p "$DATA"
chmod 700 "$DATA"
export PATCHBAY_CONFIG="$DATA/cli-config.json"

"$BIN/patchbay-server" serve --data "$DATA/relay" --listen "127.0.0.1:$PORT" --log-format json >>"$DATA/relay.log" 2>&1 &
relay=$!
agent=""
cleanup() {
	trap - EXIT INT TERM
	[ -n "$agent" ] && kill "$agent" 2>/dev/null || true
	kill "$relay" 2>/dev/null || true
	wait 2>/dev/null || true
	echo "stopped; data kept in $DATA"
}
trap cleanup EXIT INT TERM

# The relay creates its CA on first start; wait for it to answer.
fp=""
for _ in $(seq 1 100); do
	if ! kill -0 "$relay" 2>/dev/null; then
		echo "the relay did not start; its log says:" >&2
		tail -n 5 "$DATA/relay.log" >&2
		exit 1
	fi
	fp=$("$BIN/patchbay-server" fingerprint --data "$DATA/relay" 2>/dev/null) &&
		"$BIN/patchbay" whoami >/dev/null 2>&1 && break
	if [ -n "$fp" ] && [ ! -f "$PATCHBAY_CONFIG" ]; then
		if [ ! -s "$DATA/admin-token" ]; then
			(umask 077 && "$BIN/patchbay-server" admin-token --data "$DATA/relay" --name demo-admin >"$DATA/admin-token.tmp" &&
				mv "$DATA/admin-token.tmp" "$DATA/admin-token")
		fi
		"$BIN/patchbay" login --server "$URL" --token "$(cat "$DATA/admin-token")" --ca-fingerprint "$fp" >/dev/null 2>&1 && break
		rm -f "$PATCHBAY_CONFIG"
	fi
	sleep 0.2
done
"$BIN/patchbay" whoami >/dev/null || { echo "could not log in to the demo relay" >&2; exit 1; }

# A demo signing key (never committed: it lives in ./data), the built-in
# plugins and the script library signed with it and published to the relay,
# and an allowed_signers file for the demo agent that trusts only that key.
# Each step's output is kept back and shown only when it fails (quiet).
quiet() {
	local out
	if ! out=$("$@" 2>&1); then
		echo "make run: failed: ${1##*/} ${*:2}" >&2
		echo "$out" >&2
		return 1
	fi
}
KEY="$DATA/demo-signing-key"
[ -f "$KEY" ] || quiet ssh-keygen -q -t ed25519 -N '' -C demo-signer@patchbay -f "$KEY"
echo "demo-signer@patchbay namespaces=\"patchbay-plugin\" $(cut -d' ' -f1,2 "$KEY.pub")" >"$DATA/demo-allowed-signers"
plugins=()
for p in "$BIN"/plugins/*; do
	case "$p" in *.sig) ;; *) plugins+=("$p") ;; esac
done
quiet "$BIN/patchbay" plugins sign --key "$KEY" "${plugins[@]}"
for p in "${plugins[@]}"; do
	quiet "$BIN/patchbay" plugins publish "$p"
done
mkdir -p "$DATA/scripts"
cp scripts/*.sh scripts/*.ps1 "$DATA/scripts/" 2>/dev/null || true
nscripts=0
for s in "$DATA"/scripts/*.sh "$DATA"/scripts/*.ps1; do
	[ -f "$s" ] || continue
	quiet "$BIN/patchbay" plugins sign --key "$KEY" "$s"
	quiet "$BIN/patchbay" scripts publish "$s"
	nscripts=$((nscripts + 1))
done
echo "Published ${#plugins[@]} plugins and $nscripts scripts, signed with the demo key $KEY."

if [ ! -f "$DATA/demo-agent/agent.json" ]; then
	token=$("$BIN/patchbay" tokens create --tags demo=true --uses 1 --ttl 10m 2>/dev/null | head -n 1)
	"$BIN/patchbay-agent" enroll --server "$URL" --token "$token" --ca-fingerprint "$fp" \
		--data "$DATA/demo-agent" --tags site=local --trust "$DATA/demo-allowed-signers" >/dev/null
fi
"$BIN/patchbay-agent" trust list --data "$DATA/demo-agent" 2>/dev/null | grep -q demo-signer@patchbay ||
	"$BIN/patchbay-agent" trust add --data "$DATA/demo-agent" --principal demo-signer@patchbay "$KEY.pub" >/dev/null
# Interactive sessions on the demo agent need the person at the machine (you)
# to approve them on the agent's consent web page, on this machine's loopback.
"$BIN/patchbay-agent" run --data "$DATA/demo-agent" --log-format json --consent-backend web \
	>>"$DATA/agent.log" 2>&1 &
agent=$!

for _ in $(seq 1 50); do
	list=$("$BIN/patchbay" agents list --target demo=true -o json 2>/dev/null || true)
	# Online at once; its inventory is stored by the next batch write (<= 100 ms).
	echo "$list" | grep -q '"online": true' && ! echo "$list" | grep -q '"os": ""' && break
	sleep 0.2
done

consent=""
for _ in $(seq 1 50); do
	consent=$(grep '"consent page' "$DATA/agent.log" 2>/dev/null | tail -n 1 | sed -n 's/.*"url":"\([^"]*\)".*/\1/p')
	[ -n "$consent" ] && break
	sleep 0.1
done
demo_id=$("$BIN/patchbay" agents list --target demo=true -o json 2>/dev/null | grep -m1 '"id"' | cut -d'"' -f4)
# A one-time link into the web console for the demo admin (60 s, works once).
console_link=$("$BIN/patchbay" console --no-open 2>/dev/null || true)

cat <<INFO

Patchbay relay running at $URL with one demo agent.

  CA fingerprint  $fp
  admin token     $(cat "$DATA/admin-token" 2>/dev/null || echo "(see $PATCHBAY_CONFIG)")  (also in $DATA/admin-token, 0600)
  logs            $DATA/relay.log, $DATA/agent.log

Web console (this link logs in the demo admin; it works once, within 60 s):
  ${console_link:-run: PATCHBAY_CONFIG=$PATCHBAY_CONFIG bin/patchbay console}
  for a new link later: PATCHBAY_CONFIG=$PATCHBAY_CONFIG bin/patchbay console

Try, in another terminal:
  export PATCHBAY_CONFIG=$PATCHBAY_CONFIG
  bin/patchbay agents list
  bin/patchbay agents show \$(bin/patchbay agents list -o json | grep -m1 '"id"' | cut -d'"' -f4)
  bin/patchbay tokens create --tags site=paris --uses 10 --ttl 7d
  bin/patchbay plugins list
  bin/patchbay run sysinfo --target demo=true --wait
  bin/patchbay run cacheclear --target demo=true --param scopes=temp --dry-run --wait
  bin/patchbay run script --target demo=true --param name=disk-space-report --wait -o json
  bin/patchbay audit list
  bin/patchbay audit verify

Interactive sessions (approve each one on the agent's consent page,
  ${consent:-see the "consent page" line in $DATA/agent.log}):
  bin/patchbay ssh $demo_id --reason "trying Patchbay" -- uname -a
  bin/patchbay ssh $demo_id --reason "trying Patchbay"
  bin/patchbay ssh-config > $DATA/ssh_config && PATCHBAY_REASON=demo ssh -F $DATA/ssh_config $demo_id.patchbay
  bin/patchbay sessions list
  bin/patchbay sessions recording \$(bin/patchbay sessions list -o json | grep -m1 '"id"' | cut -d'"' -f4)

Ctrl-C stops the relay and the agent.
INFO
"$BIN/patchbay" agents list || true
wait "$relay"
