#!/bin/sh
# patchbay:begin
# name: renew-dhcp
# version: 1.0.0
# description: Renew the DHCP lease of a network interface (NetworkManager, systemd-networkd, dhcpcd or dhclient); the interface may drop for a few seconds
# os: linux
# shell: sh
# timeout: 2m
# needs_consent: true
# param: interface string -- the interface to renew, like eth0 (default: the one holding the default route)
# param: wait_seconds int default=30 -- how long to wait for an IPv4 address afterwards
# patchbay:end
#
# Uses whichever of these manages the interface, in this order:
# NetworkManager (re-activates the connection), systemd-networkd
# (networkctl renew), dhcpcd (dhcpcd -n), dhclient (release, then request).
# An interface with a static address is left alone.
set -eu

fail() {
	printf 'renew-dhcp: %s\n' "$*" >&2
	exit 1
}
have() { command -v "$1" >/dev/null 2>&1; }

have ip || fail "the ip command (iproute2) is not installed"

iface=${PATCHBAY_PARAM_INTERFACE:-}
if [ -z "$iface" ]; then
	iface=$(ip route show default 2>/dev/null | awk '{ for (i = 1; i < NF; i++) if ($i == "dev") { print $(i + 1); exit } }')
	[ -n "$iface" ] || fail "there is no default route: name the interface with the interface parameter"
	echo "interface: $iface (holds the default route)"
fi
# A name that cannot be an option or a path, and that exists.
case $iface in
-* | . | .. | *[!A-Za-z0-9_.:-]*) fail "'$iface' is not an interface name" ;;
esac
if [ ! -e "/sys/class/net/$iface" ]; then
	fail "there is no interface $iface (there are: $(cd /sys/class/net && echo *))"
fi

limit=${PATCHBAY_PARAM_WAIT_SECONDS:-30}
case $limit in
'' | *[!0-9]*) fail "wait_seconds must be a whole number, not '$limit'" ;;
esac

addresses() { ip -4 -o addr show dev "$iface" | awk '{ print $4 }' | tr '\n' ' ' | sed 's/ $//'; }
describe() {
	a=$(addresses)
	echo "${a:-no IPv4 address}"
}
echo "before: $iface has $(describe)"

renewed=""

# NetworkManager: re-activate the interface's connection if it uses DHCP.
if [ -z "$renewed" ] && have nmcli && [ "$(nmcli -t -f RUNNING general 2>/dev/null)" = running ]; then
	uuid=$(nmcli -g GENERAL.CON-UUID device show "$iface" 2>/dev/null || true)
	if [ -n "$uuid" ]; then
		conn=$(nmcli -g GENERAL.CONNECTION device show "$iface" 2>/dev/null || true)
		method=$(nmcli -g ipv4.method connection show uuid "$uuid" 2>/dev/null || true)
		if [ "$method" != auto ]; then
			echo "$iface uses connection '$conn' with ipv4.method=${method:-unknown}: no DHCP lease to renew"
			echo "patchbay:unchanged"
			exit 0
		fi
		echo "NetworkManager: re-activating connection '$conn' on $iface"
		nmcli connection up uuid "$uuid" ifname "$iface" || fail "nmcli connection up failed"
		renewed=NetworkManager
	fi
fi

# systemd-networkd, when it configures the interface.
if [ -z "$renewed" ] && have networkctl && have systemctl && systemctl is-active --quiet systemd-networkd 2>/dev/null; then
	setup=$(networkctl list --no-legend --no-pager "$iface" 2>/dev/null | awk '{ print $5 }')
	if [ "$setup" = configured ] || [ "$setup" = configuring ]; then
		echo "systemd-networkd: networkctl renew $iface"
		networkctl renew "$iface" || fail "networkctl renew failed (it needs systemd 244 or later)"
		renewed=systemd-networkd
	fi
fi

# dhcpcd: ask the running daemon to rebind the interface.
if [ -z "$renewed" ] && have dhcpcd && { pgrep -x dhcpcd >/dev/null 2>&1 || [ -e /run/dhcpcd.pid ] || [ -e /run/dhcpcd/pid ]; }; then
	echo "dhcpcd: dhcpcd -n $iface"
	dhcpcd -n "$iface" || fail "dhcpcd -n failed"
	renewed=dhcpcd
fi

# dhclient, when a dhclient runs for the interface or ifupdown configures it
# with DHCP (never on an interface nothing configured for DHCP): release the
# lease, then request a new one (dhclient daemonizes again).
dhclient_manages() {
	re=$(printf '%s' "$iface" | sed 's/[.]/[.]/g')
	if have pgrep && pgrep -f "dhclient.* $re( |\$)" >/dev/null 2>&1; then
		return 0
	fi
	grep -Eqs "^[[:space:]]*iface[[:space:]]+${re}[[:space:]]+inet[[:space:]]+dhcp" /etc/network/interfaces /etc/network/interfaces.d/*
}
if [ -z "$renewed" ] && have dhclient && dhclient_manages; then
	echo "dhclient: releasing and renewing the lease of $iface"
	dhclient -r "$iface" || echo "(dhclient -r failed: there may have been no lease to release)"
	dhclient "$iface" || fail "dhclient could not get a lease on $iface"
	renewed=dhclient
fi

[ -n "$renewed" ] || fail "no DHCP client manages $iface (looked for NetworkManager, systemd-networkd, dhcpcd and dhclient)"

i=0
while [ -z "$(addresses)" ]; do
	if [ "$i" -ge "$limit" ]; then
		fail "$iface has no IPv4 address ${limit}s after renewing with $renewed"
	fi
	sleep 1
	i=$((i + 1))
done
echo "after: $iface has $(describe)"
echo "renewed the DHCP lease of $iface with $renewed"
