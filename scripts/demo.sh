#!/usr/bin/env bash
# Mount a small demo union and print what to try.
#
#   scripts/demo.sh          install what is missing, build, mount the demo
#   scripts/demo.sh --stop   unmount it and remove everything it made
#
# Needs root: it mounts a tmpfs (the upper branch) and creates a whiteout
# (mknod) and an opaque-directory xattr (trusted.*).
#
# Layout, under $UNIONMOUNT_DEMO_DIR (default /tmp/unionmount-demo):
#   lower1 lower2 lower3   copies of demo/lower*, top-most first
#   rw/                    a tmpfs holding upper/ and work/ (same file system)
#   union/                 the mount point
# UNIONMOUNT_BIN=path uses that binary instead of building ./build.
set -euo pipefail

cd "$(dirname "$0")/.."
repo=$PWD
demo=${UNIONMOUNT_DEMO_DIR:-/tmp/unionmount-demo}
rw=$demo/rw
mnt=$demo/union
stamp=$demo/.unionmount-demo   # marks the directory as ours before rm -rf

die() { echo "demo.sh: $*" >&2; exit 1; }

usage() {
	echo "usage: scripts/demo.sh [--stop]"
	echo "  (no argument)  build and mount a demo union on $mnt"
	echo "  --stop         unmount the demo and remove $demo"
}

is_mounted() { findmnt -rn --mountpoint "$1" >/dev/null 2>&1; }

stop() {
	if is_mounted "$mnt"; then
		echo "+ fusermount3 -u $mnt"
		fusermount3 -u "$mnt" || umount "$mnt" ||
			die "cannot unmount $mnt (busy? leave the directory, then run --stop again)"
	fi
	if is_mounted "$rw"; then
		echo "+ umount $rw"
		umount "$rw" || die "cannot unmount $rw (busy?)"
	fi
	[ -e "$demo" ] || return 0
	if findmnt -rn -o TARGET | grep -q -F -- "$demo/"; then
		die "something is still mounted under $demo; not removing it"
	fi
	[ -e "$stamp" ] || die "$demo was not made by demo.sh; not removing it"
	echo "+ rm -rf $demo"
	rm -rf --one-file-system -- "$demo"
}

case ${1-} in
	"") ;;
	--stop) ;;
	-h|--help) usage; exit 0 ;;
	*) usage >&2; exit 1 ;;
esac

if [ "$(id -u)" -ne 0 ]; then
	die "needs root: it mounts a tmpfs and a FUSE union and creates overlay markers (mknod, trusted.* xattrs).
Run: scripts/demo.sh${1:+ $1}"
fi
case $demo in
	/*) ;;
	*) die "UNIONMOUNT_DEMO_DIR must be an absolute path" ;;
esac
case $demo in
	*[:,\\]*) die "UNIONMOUNT_DEMO_DIR must not contain ':', ',' or '\\'" ;;
esac

if [ "${1-}" = --stop ]; then
	stop
	echo "demo stopped and cleaned up"
	exit 0
fi

# --- install and build -----------------------------------------------------
scripts/deps.sh
if [ -n "${UNIONMOUNT_BIN-}" ]; then
	bin=$UNIONMOUNT_BIN
else
	if [ ! -f build/build.ninja ]; then
		meson setup build
	fi
	meson compile -C build
	bin=$repo/build/src/unionmount
fi
[ -x "$bin" ] || die "no daemon binary at $bin"
bin=$(realpath "$bin")
# unionctl sits beside the daemon, in the build tree or an install.
ctl=$(dirname "$bin")/ctl/unionctl
[ -x "$ctl" ] || ctl=$(dirname "$bin")/unionctl
[ -x "$ctl" ] || ctl=unionctl
if [ ! -e /dev/fuse ]; then
	modprobe fuse || die "/dev/fuse is missing and 'modprobe fuse' failed"
fi

# --- prepare the branches ----------------------------------------------------
if [ -e "$demo" ]; then
	echo "a previous demo is in $demo: stopping it first"
	stop
fi

mounted_ok=false
cleanup_on_failure() {
	if ! $mounted_ok; then
		echo "demo.sh: setup failed, cleaning up" >&2
		stop || true
	fi
}
trap cleanup_on_failure EXIT

mkdir -p "$demo"
touch "$stamp"
for l in lower1 lower2 lower3; do
	cp -R "demo/$l" "$demo/$l"
done
# Opaque directory marker, as kernel overlayfs writes it: lower2/fresh
# hides lower3/fresh.
setfattr -n trusted.overlay.opaque -v y "$demo/lower2/fresh" ||
	die "cannot set a trusted.* xattr on $demo (its file system does not support them); set UNIONMOUNT_DEMO_DIR to a directory on ext4, xfs, btrfs or tmpfs"

# Upper and work directories on one tmpfs: workdir must share the upper's
# file system so that new objects can be moved in with an atomic rename.
mkdir -p "$rw" "$mnt"
echo "+ mount -t tmpfs -o mode=0755,size=16m unionmount-demo $rw"
mount -t tmpfs -o mode=0755,size=16m unionmount-demo "$rw"
mkdir "$rw/upper" "$rw/work"
cp -R demo/upper/. "$rw/upper/"
# Whiteout, as kernel overlayfs writes it: hides lower3/deleted.txt.
mknod "$rw/upper/deleted.txt" c 0 0

# --- mount the union ---------------------------------------------------------
lowers=$demo/lower1:$demo/lower2:$demo/lower3
echo "+ $bin demo $mnt -o lowerdir=$lowers,upperdir=$rw/upper,workdir=$rw/work"
"$bin" demo "$mnt" -o "lowerdir=$lowers,upperdir=$rw/upper,workdir=$rw/work" ||
	die "the daemon failed to mount (see its message above)"
for _ in 1 2 3 4 5 6 7 8 9 10; do
	is_mounted "$mnt" && break
	sleep 0.2
done
is_mounted "$mnt" || die "$mnt did not become a mount point"
mounted_ok=true
trap - EXIT

stopcmd="$repo/scripts/demo.sh --stop"
if [ -n "${UNIONMOUNT_DEMO_DIR-}" ]; then
	stopcmd="env UNIONMOUNT_DEMO_DIR=$demo $stopcmd"
fi

# --- tell the user -------------------------------------------------------------
cat <<EOF

The demo union is mounted on $mnt
Branches, top first (layer number = st_ino >> 56):
  0  upper   $rw/upper   (tmpfs: notes.txt, whiteout deleted.txt)
  1  lower1  $demo/lower1
  2  lower2  $demo/lower2   (fresh/ is opaque)
  3  lower3  $demo/lower3

\$ ls -l $mnt
$(ls -l "$mnt" 2>&1)

Try (each line can be pasted as is):
  cd $mnt
  ls                      # bottom.txt fresh greeting.txt merged notes.txt (no deleted.txt)
  cat greeting.txt        # lower1's copy: it shadows lower2/greeting.txt
  ls merged               # one.txt three.txt two.txt: merged from all three lowers
  ls fresh                # new.txt only: lower2/fresh is opaque, lower3/fresh/old.txt stays hidden
  ls deleted.txt          # No such file: the upper branch holds a whiteout for it
  cat notes.txt           # from the upper branch
  echo hi >> greeting.txt # copy-up: lower1's file is copied to upper, then changed
  rm bottom.txt           # a lower file: upper gets a whiteout for it
  mv merged together      # a merged directory moves in one rename (redirect)
  ls together             # still one.txt three.txt two.txt
  for f in * merged/*; do i=\$(stat -c %i "\$f"); echo "layer \$((i >> 56))  \$f"; done
  getfattr -d -m - fresh  # nothing: internal xattrs are hidden in the union
  cd /

Look at the layers:
  ls -lR $demo/lower1 $demo/lower2 $demo/lower3
  ls -l $rw/upper     # deleted.txt, bottom.txt are 'c 0, 0': whiteouts; after an 'ls'
                      # in the union, 'c 0, 524288+N' are fallthrus: names shown from lowerN
  getfattr -d -m - $rw/upper   # trusted.unionmount.complete: listed once, read in one pass since
  getfattr -d -m - $rw/upper/together   # trusted.overlay.redirect="/merged"
  getfattr -n trusted.overlay.opaque $demo/lower2/fresh

What the upper branch changes, offline (unmount first; mount again with the
same command as above):
  fusermount3 -u $mnt
  $ctl diff -o lowerdir=$lowers,upperdir=$rw/upper,workdir=$rw/work
  $ctl check -o lowerdir=$lowers,upperdir=$rw/upper,workdir=$rw/work

Stop and clean up (leave $mnt first):
  $stopcmd
or by hand:
  fusermount3 -u $mnt
  umount $rw
  rm -rf $demo
EOF
