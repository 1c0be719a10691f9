#!/usr/bin/env bash
# Install the Debian packages unionmount needs to build, test and demo.
# Only what is missing is installed; apt-get update runs first when needed.
#   scripts/deps.sh          what scripts/test.sh and scripts/demo.sh need
#   scripts/deps.sh --fuzz   that and clang with libFuzzer, for scripts/fuzz.sh
set -euo pipefail

# strace: t_crash_ns kills the daemon at a chosen syscall; e2fsprogs: the
# loop-mounted ext4 uppers of t_faults; liburing-dev: FUSE over io_uring.
pkgs=(build-essential meson ninja-build pkg-config libfuse3-dev fuse3
      libattr1-dev libxxhash-dev check attr squashfs-tools groff-base man-db
      util-linux kmod fuse-overlayfs unionfs-fuse python3 valgrind
      strace e2fsprogs liburing-dev)
# clang does not pull in its sanitizer and libFuzzer runtimes on Debian.
# Without its recommends (llvm-14-dev and what that drags in) the download
# is about 60 MB instead of 120.
fuzz_pkgs=(clang libclang-rt-dev)

fuzz=false
case ${1:-} in
--fuzz) fuzz=true ;;
"") ;;
*) echo "usage: $0 [--fuzz]" >&2; exit 2 ;;
esac

sudo=
[ "$(id -u)" -eq 0 ] || sudo=sudo
updated=false

# install [APT-GET OPTION...] -- PACKAGE...: those not installed yet.
install() {
	local opts=() missing=() p
	while [ "$1" != -- ]; do opts+=("$1"); shift; done
	shift
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	echo "installing: ${missing[*]}" >&2
	$updated || $sudo apt-get update -qq
	updated=true
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${opts[@]}" "${missing[@]}" >/dev/null
}

install -- "${pkgs[@]}"
if $fuzz; then
	install --no-install-recommends -- "${fuzz_pkgs[@]}"
fi
