#!/bin/sh
# Postinstall of the patchbay-agent and patchbay-server packages (deb: postinst
# configure; rpm: %post). @UNIT@ and @USER@ are filled in by patchbay-release.
# It creates the relay's system user, reloads systemd and restarts the service on
# an upgrade if it was running. It neither enrolls, enables nor starts anything.
# With DPKG_ROOT set (dpkg --root --force-script-chrootless) it acts on that root
# only and leaves the running system alone.
set -e
unit=@UNIT@
user=@USER@
root="${DPKG_ROOT:-}"

if [ -n "$user" ]; then
	conf="$root/usr/lib/sysusers.d/$unit.conf"
	if command -v systemd-sysusers >/dev/null 2>&1; then
		systemd-sysusers --root="${root:-/}" "$conf"
	elif [ -z "$root" ] && ! getent passwd "$user" >/dev/null 2>&1; then
		useradd --system --user-group --home-dir /var/lib/patchbay --no-create-home \
			--shell /usr/sbin/nologin --comment "Patchbay relay" "$user"
	fi
fi

upgrade=
case "$1" in
configure) [ -n "$2" ] && upgrade=1 ;;
[0-9]*) [ "$1" -ge 2 ] && upgrade=1 ;;
esac

if [ -z "$root" ] && [ -d /run/systemd/system ]; then
	systemctl daemon-reload || true
	if [ -n "$upgrade" ]; then
		systemctl try-restart "$unit.service" || true
	else
		echo "$unit installed: see /etc/patchbay/$unit.env, then systemctl enable --now $unit"
	fi
fi
exit 0
