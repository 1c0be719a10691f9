#!/usr/bin/env bash
# Install the Debian packages unionmount needs to build, test and demo.
# Only what is missing is installed; apt-get update runs first when needed.
set -euo pipefail

pkgs=(build-essential meson ninja-build pkg-config libfuse3-dev fuse3
      libattr1-dev libxxhash-dev check attr squashfs-tools groff-base man-db
      util-linux kmod fuse-overlayfs unionfs-fuse python3)

missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=
[ "$(id -u)" -eq 0 ] || sudo=sudo
echo "installing: ${missing[*]}" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
