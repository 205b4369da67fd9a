#!/bin/sh
# patchbay:begin
# name: flush-dns
# version: 1.0.0
# description: Flush the local DNS cache: systemd-resolved, nscd and dnsmasq on Linux, mDNSResponder on macOS
# os: linux, darwin
# shell: sh
# timeout: 1m
# patchbay:end
#
# Flushes every local DNS cache it finds running; starts nothing and stops
# nothing. With no local cache it changes nothing and says so.
set -eu

fail() {
	printf 'flush-dns: %s\n' "$*" >&2
	exit 1
}
have() { command -v "$1" >/dev/null 2>&1; }

# pids NAME prints the IDs of the processes whose command is exactly NAME.
pids() {
	if have pgrep; then
		pgrep -x "$1" || true
		return
	fi
	for c in /proc/[0-9]*/comm; do
		[ -r "$c" ] || continue
		if [ "$(cat "$c" 2>/dev/null)" = "$1" ]; then
			p=${c#/proc/}
			echo "${p%/comm}"
		fi
	done
}

if [ "$(uname -s)" = Darwin ]; then
	dscacheutil -flushcache || fail "dscacheutil -flushcache failed"
	killall -HUP mDNSResponder || fail "could not signal mDNSResponder"
	echo "flushed the macOS DNS cache (dscacheutil, mDNSResponder)"
	exit 0
fi

flushed=""

# systemd-resolved (the stub resolver at 127.0.0.53 on most desktops).
if have systemctl && systemctl is-active --quiet systemd-resolved 2>/dev/null; then
	if have resolvectl; then
		resolvectl flush-caches || fail "resolvectl flush-caches failed"
	elif have systemd-resolve; then
		systemd-resolve --flush-caches || fail "systemd-resolve --flush-caches failed"
	else
		systemctl kill --signal=USR2 systemd-resolved || fail "could not signal systemd-resolved"
	fi
	echo "flushed the systemd-resolved cache"
	flushed="$flushed systemd-resolved"
fi

# nscd (or unscd): invalidate its hosts table only.
if have nscd && [ -n "$(pids nscd)" ]; then
	nscd -i hosts || fail "nscd -i hosts failed"
	echo "invalidated the nscd hosts cache"
	flushed="$flushed nscd"
fi

# dnsmasq, standalone or NetworkManager's: SIGHUP empties its cache.
dnsmasq_pids=$(pids dnsmasq)
if [ -n "$dnsmasq_pids" ]; then
	for pid in $dnsmasq_pids; do
		kill -HUP "$pid" || fail "could not signal dnsmasq (pid $pid)"
	done
	echo "cleared the dnsmasq cache (pid $(echo "$dnsmasq_pids" | tr '\n' ' ' | sed 's/ $//'))"
	flushed="$flushed dnsmasq"
fi

if [ -z "$flushed" ]; then
	echo "no local DNS cache is running (systemd-resolved, nscd, dnsmasq): queries go straight to the DNS servers, nothing to flush"
	echo "patchbay:unchanged"
	exit 0
fi
echo "flushed:$flushed"
