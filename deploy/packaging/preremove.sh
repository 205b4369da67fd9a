#!/bin/sh
# Preremove of the patchbay-agent and patchbay-server packages (deb: prerm; rpm:
# %preun). On removal (not on an upgrade) it stops and disables the service.
set -e
unit=@UNIT@
remove=
case "$1" in
remove) remove=1 ;;
0) remove=1 ;;
esac
if [ -n "$remove" ] && [ -z "${DPKG_ROOT:-}" ] && [ -d /run/systemd/system ]; then
	systemctl disable --now "$unit.service" || true
fi
exit 0
