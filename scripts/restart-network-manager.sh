#!/bin/sh
# patchbay:begin
# name: restart-network-manager
# version: 1.0.0
# description: Restart NetworkManager and wait until it is back; connections drop for a few seconds
# os: linux
# shell: sh
# timeout: 3m
# needs_consent: true
# param: wait_seconds int default=60 -- how long to wait for NetworkManager to finish starting
# patchbay:end
#
# Only restarts a NetworkManager that is running: one that is stopped or
# disabled was stopped on purpose (or another network service is in
# charge), so this refuses instead of starting it.
set -eu

fail() {
	printf 'restart-network-manager: %s\n' "$*" >&2
	exit 1
}
have() { command -v "$1" >/dev/null 2>&1; }

limit=${PATCHBAY_PARAM_WAIT_SECONDS:-60}
case $limit in
'' | *[!0-9]*) fail "wait_seconds must be a whole number, not '$limit'" ;;
esac

have nmcli || have NetworkManager || fail "NetworkManager is not installed"

if have systemctl && [ -d /run/systemd/system ]; then
	unit=NetworkManager.service
	systemctl cat "$unit" >/dev/null 2>&1 || fail "there is no $unit unit"
	if ! systemctl is-active --quiet "$unit"; then
		fail "NetworkManager is not running ($(systemctl is-active "$unit" || true)): not starting it"
	fi
	echo "restarting $unit"
	systemctl restart "$unit" || fail "systemctl restart $unit failed: $(systemctl is-active "$unit" || true)"
elif [ -x /etc/init.d/network-manager ] || [ -x /etc/init.d/NetworkManager ]; then
	script=/etc/init.d/network-manager
	[ -x "$script" ] || script=/etc/init.d/NetworkManager
	"$script" status >/dev/null 2>&1 || fail "NetworkManager is not running: not starting it"
	echo "restarting NetworkManager ($script)"
	"$script" restart || fail "$script restart failed"
else
	fail "cannot tell how NetworkManager is started here (no systemd unit or init script)"
fi

# Wait for the daemon to answer, then for its start-up to complete.
i=0
until [ "$(nmcli -t -f RUNNING general 2>/dev/null)" = running ]; do
	[ "$i" -lt "$limit" ] || fail "NetworkManager did not come back within ${limit}s"
	sleep 1
	i=$((i + 1))
done
if have nm-online; then
	left=$((limit - i))
	[ "$left" -gt 0 ] || left=1
	nm-online -s -q -t "$left" || echo "(NetworkManager is still starting up after ${limit}s)"
fi

echo "devices:"
nmcli -t -f DEVICE,TYPE,STATE,CONNECTION device status | sed 's/^/  /'
state=$(nmcli -t -f STATE general 2>/dev/null || echo unknown)
echo "NetworkManager restarted; state: $state"
