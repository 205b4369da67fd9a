#!/bin/sh
# patchbay:begin
# name: rebuild-font-cache
# version: 1.0.0
# description: Rebuild the fontconfig font cache (fc-cache -f), optionally deleting users' own font caches too
# os: linux
# shell: sh
# timeout: 10m
# param: user_caches bool default=false -- also delete the per-user caches in /home/*/.cache/fontconfig (rebuilt on next use)
# patchbay:end
#
# Cures fonts missing from menus, wrong fallbacks and "garbled text" after
# font packages changed. Deletes nothing but fontconfig cache files.
set -eu

fail() {
	printf 'rebuild-font-cache: %s\n' "$*" >&2
	exit 1
}
have() { command -v "$1" >/dev/null 2>&1; }

case ${PATCHBAY_PARAM_USER_CACHES:-false} in
true | 1 | t | T | TRUE | True) user_caches=true ;;
*) user_caches=false ;;
esac

if ! have fc-cache; then
	echo "fontconfig (fc-cache) is not installed: there is no font cache to rebuild"
	echo "patchbay:unchanged"
	exit 0
fi

if [ "$user_caches" = true ]; then
	removed=0
	for dir in /home/*/.cache/fontconfig /root/.cache/fontconfig; do
		# Real directories only: never follow a link a user planted. find
		# -delete removes relative to the directory it walks, so swapping
		# in a link halfway does not redirect it either.
		[ -d "$dir" ] || continue
		if [ -L "$dir" ] || [ -L "${dir%/fontconfig}" ]; then
			echo "skipped $dir: it is a symbolic link"
			continue
		fi
		n=$(find "$dir" -maxdepth 1 -type f -name '*.cache-*' -print -delete | wc -l | tr -d ' ')
		echo "deleted $n cache files in $dir"
		removed=$((removed + n))
	done
	echo "deleted $removed per-user cache files"
fi

echo "running fc-cache -f (this can take a minute)"
fc-cache -f || fail "fc-cache -f failed"
fonts=$(fc-list 2>/dev/null | wc -l | tr -d ' ')
echo "rebuilt the font cache: $fonts fonts"
