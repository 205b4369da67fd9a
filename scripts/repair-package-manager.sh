#!/bin/sh
# patchbay:begin
# name: repair-package-manager
# version: 1.0.0
# description: Repair an interrupted or broken package manager state: dpkg --configure -a and apt-get -f install, or the rpm/dnf/yum equivalents
# os: linux
# shell: sh
# timeout: 30m
# check: true
# param: allow_remove bool default=false -- let apt-get -f install remove packages when that is the only way to fix dependencies
# patchbay:end
#
# Check mode only looks (dpkg --audit, a simulated apt-get -f install, rpm
# and dnf/yum check) and exits 10 when something needs repair.
#
# Fix mode refuses while another package operation runs (it never kills
# one), removes lock files only when no process holds them, keeps existing
# configuration files (--force-confdef --force-confold), and will not let
# apt remove packages unless allow_remove=true.
set -eu

export DEBIAN_FRONTEND=noninteractive LC_ALL=C
mode=${PATCHBAY_MODE:-fix}

fail() {
	printf 'repair-package-manager: %s\n' "$*" >&2
	exit 1
}
have() { command -v "$1" >/dev/null 2>&1; }

case ${PATCHBAY_PARAM_ALLOW_REMOVE:-false} in
true | 1 | t | T | TRUE | True) allow_remove=true ;;
*) allow_remove=false ;;
esac

# running NAME... prints "pid name" for every process whose command is one
# of NAME (the kernel cuts command names to 15 characters).
running() {
	for c in /proc/[0-9]*/comm; do
		name=$(cat "$c" 2>/dev/null) || continue
		for want in "$@"; do
			if [ "$name" = "$want" ]; then
				p=${c#/proc/}
				echo "${p%/comm} $name"
			fi
		done
	done
}

# holders FILE prints the PIDs of processes that have FILE open; it fails
# when it cannot tell (neither fuser nor lsof is installed).
holders() {
	if have fuser; then
		fuser "$1" 2>/dev/null | tr -cs '0-9' ' ' || true
	elif have lsof; then
		lsof -t -- "$1" 2>/dev/null | tr '\n' ' ' || true
	else
		return 1
	fi
}

# remove_stale_locks FILE... deletes the lock files no process holds. The
# locks themselves are fcntl locks that end with their process; a left-over
# file is harmless, but old tools and guides trip over it.
remove_stale_locks() {
	for f in "$@"; do
		[ -f "$f" ] || continue
		if ! h=$(holders "$f"); then
			echo "cannot tell whether $f is in use (install psmisc or lsof): leaving it"
			continue
		fi
		if [ -n "$(echo "$h" | tr -d ' ')" ]; then
			fail "$f is held by process $h: another package operation is running"
		fi
		rm -f -- "$f"
		echo "removed the stale lock file $f"
	done
}

# refuse_if_busy LOCKFILES -- NAMES... fails when a process named one of
# NAMES runs or a process holds one of LOCKFILES. (Long-running helpers such
# as packagekitd or unattended-upgrade-shutdown are only busy while they
# hold the lock, so they are found through the lock files.)
refuse_if_busy() {
	files=""
	while [ "$1" != -- ]; do
		files="$files $1"
		shift
	done
	shift
	busy=$(running "$@")
	for f in $files; do
		[ -f "$f" ] || continue
		if h=$(holders "$f") && [ -n "$(echo "$h" | tr -d ' ')" ]; then
			busy="$busy
process $(echo "$h" | sed 's/^ *//; s/ *$//') holds $f"
		fi
	done
	busy=$(echo "$busy" | sed '/^$/d')
	if [ -n "$busy" ]; then
		echo "the package manager is in use:"
		echo "$busy" | sed 's/^/  /'
		fail "another package operation is running: try again when it has finished"
	fi
}

# --- Debian, Ubuntu: dpkg and apt ------------------------------------------

apt_locks="/var/lib/dpkg/lock-frontend /var/lib/dpkg/lock /var/cache/apt/archives/lock /var/lib/apt/lists/lock"

apt_problems() {
	audit=$(dpkg --audit 2>&1 || true)
	if [ -n "$audit" ]; then
		echo "dpkg --audit:"
		echo "$audit" | sed 's/^/  /'
	fi
	if ! sim=$(apt-get -s -f install 2>&1); then
		echo "apt-get -s -f install fails:"
		echo "$sim" | sed 's/^/  /'
		return
	fi
	actions=$(echo "$sim" | grep -E '^(Inst|Remv|Conf|Purg) ' || true)
	if [ -n "$actions" ]; then
		echo "apt-get -f install would:"
		echo "$actions" | sed 's/^/  /'
	fi
}

repair_apt() {
	# shellcheck disable=SC2086 # a list of paths without spaces, split on purpose
	refuse_if_busy $apt_locks -- dpkg apt apt-get aptitude
	problems=$(apt_problems)
	if [ "$mode" = check ]; then
		if [ -n "$problems" ]; then
			echo "$problems"
			echo "dpkg/apt need repair"
			exit 10
		fi
		echo "dpkg and apt are consistent"
		exit 0
	fi
	if [ -z "$problems" ]; then
		echo "dpkg and apt are consistent: nothing to repair"
		echo "patchbay:unchanged"
		exit 0
	fi
	echo "$problems"
	# shellcheck disable=SC2086 # as above
	remove_stale_locks $apt_locks

	echo "== dpkg --configure -a"
	dpkg --force-confdef --force-confold --configure -a || fail "dpkg --configure -a failed (see above)"

	removals=$(apt-get -s -f install 2>/dev/null | awk '$1 == "Remv" { print $2 }' | tr '\n' ' ')
	if [ -n "$removals" ] && [ "$allow_remove" != true ]; then
		fail "fixing the dependencies would remove: $removals; run again with allow_remove=true to allow that"
	fi
	echo "== apt-get -f install"
	apt-get -y -f install -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold ||
		fail "apt-get -f install failed (see above)"
	apt-get check || fail "apt-get check still reports problems (see above)"
	left=$(apt_problems)
	if [ -n "$left" ]; then
		echo "$left"
		fail "problems remain after the repair (see above)"
	fi
	echo "repaired dpkg/apt: dpkg --configure -a and apt-get -f install completed"
}

# --- Fedora, RHEL: rpm and dnf or yum -------------------------------------

# pm_check runs "dnf check" or "yum check" where the tool has it (dnf5 may not).
pm_check() {
	if "$pm" check --help >/dev/null 2>&1; then
		"$pm" -q check
	fi
}

rpm_problems() {
	if ! out=$(rpm -q rpm 2>&1); then
		echo "the rpm database cannot be read:"
		echo "$out" | sed 's/^/  /'
		return
	fi
	if ! out=$(pm_check 2>&1); then
		echo "$pm check:"
		echo "$out" | sed 's/^/  /'
	fi
}

# remove_stale_pidfiles FILE... deletes yum/dnf lock files naming a process
# that no longer runs.
remove_stale_pidfiles() {
	for f in "$@"; do
		[ -f "$f" ] || continue
		pid=$(tr -cd '0-9' <"$f")
		if [ -n "$pid" ] && [ -d "/proc/$pid" ]; then
			fail "$f names process $pid, which is running: another package operation is running"
		fi
		rm -f -- "$f"
		echo "removed the stale lock file $f"
	done
}

repair_rpm() {
	refuse_if_busy /var/lib/rpm/.rpm.lock -- rpm dnf dnf5 yum
	problems=$(rpm_problems)
	if [ "$mode" = check ]; then
		if [ -n "$problems" ]; then
			echo "$problems"
			echo "rpm/$pm need repair"
			exit 10
		fi
		echo "rpm and $pm are consistent"
		exit 0
	fi
	if [ -z "$problems" ]; then
		echo "rpm and $pm are consistent: nothing to repair"
		echo "patchbay:unchanged"
		exit 0
	fi
	echo "$problems"
	remove_stale_pidfiles /var/run/yum.pid /run/yum.pid /var/cache/dnf/*_lock.pid
	remove_stale_locks /var/lib/rpm/.rpm.lock
	if ! rpm -q rpm >/dev/null 2>&1; then
		echo "== rpm --rebuilddb"
		rpm --rebuilddb || fail "rpm --rebuilddb failed (see above)"
	fi
	if [ "$pm" = yum ] && have yum-complete-transaction; then
		echo "== yum-complete-transaction --cleanup-only"
		yum-complete-transaction -y --cleanup-only || fail "yum-complete-transaction failed"
	fi
	echo "== $pm clean metadata"
	"$pm" -y clean metadata || fail "$pm clean metadata failed"
	left=$(rpm_problems)
	if [ -n "$left" ]; then
		echo "$left"
		fail "dependency problems remain (see above): they need a person to decide what to remove or update"
	fi
	echo "repaired rpm/$pm"
}

if [ "$mode" = fix ] && [ "$(id -u)" -ne 0 ]; then
	fail "must run as root"
fi
if have dpkg && have apt-get; then
	repair_apt
elif have dnf; then
	pm=dnf
	repair_rpm
elif have yum; then
	pm=yum
	repair_rpm
else
	fail "no supported package manager (dpkg/apt, dnf or yum)"
fi
