#!/bin/sh
# patchbay:begin
# name: disk-space-report
# version: 1.0.0
# description: Report disk usage and the largest directories under a path (read-only)
# os: linux, darwin
# shell: sh
# timeout: 10m
# check: true
# param: path string default=/ -- absolute path of the directory whose largest subdirectories are listed
# param: top int default=15 -- how many subdirectories to list (1 to 100)
# param: threshold int default=0 -- check only: report when the filesystem holding path is at least this full, in percent (0 always reports)
# patchbay:end
#
# Changes nothing. In check mode it exits 10 ("fix needed", the fix being
# this report) when the filesystem holding PATH is at least THRESHOLD% full,
# so `patchbay run --dry-run` across a fleet finds the full disks.
set -eu

path=${PATCHBAY_PARAM_PATH:-/}
top=${PATCHBAY_PARAM_TOP:-15}
threshold=${PATCHBAY_PARAM_THRESHOLD:-0}

fail() {
	printf 'disk-space-report: %s\n' "$*" >&2
	exit 2
}

case $path in
/*) ;;
*) fail "path must be absolute, not '$path'" ;;
esac
[ -d "$path" ] || fail "$path is not a directory"
case $top in
'' | *[!0-9]*) fail "top must be a whole number from 1 to 100, not '$top'" ;;
esac
if [ "$top" -lt 1 ] || [ "$top" -gt 100 ]; then
	fail "top must be from 1 to 100, not $top"
fi
case $threshold in
'' | *[!0-9]*) fail "threshold must be a whole number from 0 to 100, not '$threshold'" ;;
esac
[ "$threshold" -le 100 ] || fail "threshold must be from 0 to 100, not $threshold"

# The filesystem holding $path: its use in percent and its mount point
# (df -P prints one line per filesystem; the mount point may hold spaces).
fs=$(df -P -k -- "$path" | awk 'NR == 2 {
	use = $5; sub("%", "", use)
	mnt = $6; for (i = 7; i <= NF; i++) mnt = mnt " " $i
	print use " " mnt
}')
usage=${fs%% *}
mount=${fs#* }
case $usage in
'' | *[!0-9]*) fail "could not read the usage of $path from df" ;;
esac

if [ "${PATCHBAY_MODE:-fix}" = check ]; then
	if [ "$usage" -ge "$threshold" ]; then
		echo "$mount is $usage% full (threshold $threshold%)"
		exit 10
	fi
	echo "$mount is $usage% full (below $threshold%)"
	exit 0
fi

echo "== Filesystems"
df -P -h || echo "(df reported the errors above)"
echo

echo "== Largest directories under $path (this filesystem only)"
list=${TMPDIR:-/tmp}/disk-space-report.$$
trap 'rm -f "$list"' EXIT
if ! du -x -k -d 1 -- "$path" >"$list" 2>/dev/null; then
	echo "(some directories could not be read: their sizes are missing or too small)"
fi
# du prints "KiB<TAB>path"; the first line after sorting is $path itself.
sort -rn "$list" | head -n "$((top + 1))" | awk -F '\t' '{
	s = $1; u = "K"
	if (s >= 1024) { s /= 1024; u = "M" }
	if (s >= 1024) { s /= 1024; u = "G" }
	if (s >= 1024) { s /= 1024; u = "T" }
	printf "%8.1f%s  %s\n", s, u, substr($0, index($0, "\t") + 1)
}'
largest=$(sort -rn "$list" | sed -n 2p | cut -f 2-)
echo
if [ -n "$largest" ]; then
	echo "$mount is $usage% full; the largest directory under $path is $largest"
else
	echo "$mount is $usage% full"
fi
echo "patchbay:unchanged"
