#!/bin/sh
# Patchbay agent installer for Linux and macOS. A relay serves it at
# /install/linux.sh and /install/darwin.sh; the one-line installer printed by
# "patchbay agents installer" downloads it, checks its SHA-256 against the one
# the line carries, and only then runs it as:
#
#   PATCHBAY_ENROLL_TOKEN=pbe_... sh install.sh --server https://RELAY:PORT \
#       --ca-fingerprint sha256:HEX --version VERSION --sha256 HEX [--arch amd64|arm64]
#
# It downloads patchbay-agent_VERSION_OS_ARCH from the relay's /releases/,
# checks its SHA-256 against --sha256 (taken by the CLI from the release's
# signed SHA256SUMS) BEFORE running it, then runs
# "patchbay-agent service install --copy-binary": the agent enrolls with the
# token (pinning the relay's CA by --ca-fingerprint), installs itself in
# /usr/local/bin, writes and enables its service, and starts it.
#
# TLS: the downloads do not verify the relay's certificate (curl -k): the
# relay's CA is private, and curl can pin only a server key, not a CA. The
# downloads carry no secret and every byte is checked against a hash that came
# from the technician's own command line, so a network attacker can at most
# make the install fail. The token travels only inside the agent's own
# enrollment, over TLS pinned to the CA fingerprint.
#
# Environment:
#   PATCHBAY_ENROLL_TOKEN       the single-use enrollment token (required)
#   PATCHBAY_INSTALL_ROOT=DIR   install into DIR instead of /, start nothing
#                               (image builders, tests); no root needed
#   PATCHBAY_INSTALL_NO_START=1 install and enable the service, do not start it
#                               (containers without systemd: run the unit's
#                               ExecStart in the foreground instead)
set -eu

die() {
	echo "patchbay install: $*" >&2
	exit 1
}

server='' fp='' version='' sum='' arch=''
while [ $# -gt 0 ]; do
	[ $# -ge 2 ] || die "$1 needs a value"
	case $1 in
	--server) server=$2 ;;
	--ca-fingerprint) fp=$2 ;;
	--version) version=$2 ;;
	--sha256) sum=$2 ;;
	--arch) arch=$2 ;;
	*) die "unknown argument $1 (want --server, --ca-fingerprint, --version, --sha256, --arch)" ;;
	esac
	shift 2
done
[ -n "$server" ] && [ -n "$fp" ] && [ -n "$version" ] && [ -n "$sum" ] ||
	die "--server, --ca-fingerprint, --version and --sha256 are required (use the line patchbay agents installer prints)"
[ -n "${PATCHBAY_ENROLL_TOKEN:-}" ] || die "no enrollment token in PATCHBAY_ENROLL_TOKEN (use the line patchbay agents installer prints)"

case $(uname -s) in
Linux) os=linux ;;
Darwin) os=darwin ;;
*) die "$(uname -s) is not supported by this script (Linux and macOS are; Windows has install/windows.ps1)" ;;
esac
case $(uname -m) in
x86_64 | amd64) here=amd64 ;;
aarch64 | arm64) here=arm64 ;;
*) here=$(uname -m) ;;
esac
[ -n "$arch" ] || arch=$here
[ "$arch" = "$here" ] || die "this machine is $here, the installer line is for $arch: make one with patchbay agents installer --arch $here"

root=${PATCHBAY_INSTALL_ROOT:-}
if [ -z "$root" ] && [ "$(id -u)" != 0 ]; then
	die "run this as root (sudo -i, then the line again), or set PATCHBAY_INSTALL_ROOT=DIR to install into a directory"
fi

name="patchbay-agent_${version}_${os}_${arch}"
url="$server/releases/$version/$name"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/patchbay-install.XXXXXX") || die "cannot make a temporary directory (set TMPDIR)"
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' INT TERM HUP

echo "patchbay install: downloading $url" >&2
if command -v curl >/dev/null 2>&1; then
	curl -fsSk -o "$tmp/$name" "$url" || die "download $url failed"
elif command -v wget >/dev/null 2>&1; then
	wget -q --no-check-certificate -O "$tmp/$name" "$url" || die "download $url failed"
else
	die "neither curl nor wget is installed (Debian package curl)"
fi

if command -v sha256sum >/dev/null 2>&1; then
	got=$(sha256sum <"$tmp/$name" | cut -c1-64)
elif command -v shasum >/dev/null 2>&1; then
	got=$(shasum -a 256 <"$tmp/$name" | cut -c1-64)
else
	die "neither sha256sum nor shasum is installed (Debian package coreutils)"
fi
want=$(printf '%s' "$sum" | tr 'A-F' 'a-f')
[ "$got" = "$want" ] ||
	die "$name from the relay has SHA-256 $got, but the signed release manifest says $want: refusing to run it, nothing was installed"

chmod 0755 "$tmp/$name"
set -- service install --copy-binary --data /var/lib/patchbay-agent --server "$server" --ca-fingerprint "$fp"
if [ -n "$root" ]; then
	set -- "$@" --root "$root"
elif [ -n "${PATCHBAY_INSTALL_NO_START:-}" ]; then
	set -- "$@" --no-start
fi
# The token reaches the agent in PATCHBAY_ENROLL_TOKEN, not on its command line.
"$tmp/$name" "$@" || die "patchbay-agent service install failed (see above)"
