#!/bin/sh
# Postremove of the patchbay-agent and patchbay-server packages (deb: postrm;
# rpm: %postun). It reloads systemd. The data directories (/var/lib/patchbay-agent,
# /var/lib/patchbay), /etc/patchbay and the relay's user stay: remove them by hand.
set -e
if [ -z "${DPKG_ROOT:-}" ] && [ -d /run/systemd/system ]; then
	systemctl daemon-reload || true
fi
exit 0
