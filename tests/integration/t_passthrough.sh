#!/usr/bin/env bash
# t_passthrough: FUSE passthrough (-o passthrough=auto|all|off), what a
# program sees and what the daemon is asked.
#
# Where the kernel offers passthrough (Linux >= 6.9 built with
# CONFIG_FUSE_PASSTHROUGH; the test reads the kernel's version and
# config) the daemon must take it, and then:
# 1. auto, the default: writing a new file and reading it back sends the
#    daemon no WRITE and no READ; reading a lower file does (lower files
#    stay cached, so their handles can follow a copy-up). A descriptor
#    kept open on a lower file sees an append made through another one
#    (the copy-up, a page-cache open beside it: no EIO). A descriptor
#    kept on an upper file sees truncate, append and overwrite made
#    through other opens and paths; chmod and rename under it are fine.
# 2. A file written and closed, then removed, gives its space back in
#    upper (a tmpfs of ours): the kernel's backing file was released with
#    the last open.
# 3. passthrough=all: reading a lower file sends no READ. While a
#    descriptor keeps a lower file open, opening it for writing, with
#    O_TRUNC, and truncating it fail with ETXTBSY (man page) and copy
#    nothing up; chmod works; a new open and the kept descriptor read the
#    data. Once it is closed, writing works (also at once after a
#    close, before the kernel's RELEASE reached the daemon) and what was
#    written is read through passthrough. A read-only union passes lower files through
#    with auto.
# 4. off: WRITE requests as before, nothing asked at INIT.
# 5. auto: a write through a shared mapping of an upper file, or of a
#    lower one opened for writing, moves the mtime stat shows while the
#    file is open and after (also when only the mtime is asked for, and
#    a second after a write through a mapping kept past the close), as
#    on the upper filesystem itself. Only where passthrough is offered.
# 6. SIGTERM while a passthrough file is open: the daemon exits 0.
# Where the kernel does not offer it, every open is a cached one and
# sections 1-3 check only what a program sees.
. "$(dirname "$0")/lib.sh"
setup_test
require_daemon
selftest && skip "passthrough is the daemon's; nothing to compare with overlayfs"

if kernel_has_pt; then PT=1; else PT=0; fi
log "kernel offers passthrough: $PT"

# ops MNT NAME: how many NAME requests the daemon logged so far.
ops() { grep -c "opcode: $2 (" "${_log_of[$1]}"; }

# reads_direct LABEL WANT PATH: PATH reads WANT, and where the kernel
# offers passthrough, the daemon got no READ for it.
reads_direct() {
	local r0
	r0=$(ops "$M" READ)
	expect_eq "$1" "$2" "$(t cat "$3")"
	[ "$PT" -eq 1 ] && expect_eq "$1, without READ" "$r0" "$(ops "$M" READ)"
}

kmount tmpfs "$T/t" size=64m
U=$T/t/upper W=$T/t/work L=$T/lower M=$T/mnt
mkdir -p "$U" "$W" "$L" "$M"
mkf "$L" lowfile "lower one
"
mkf "$L" keep "kept
"
mkf "$L" all1 "all one
"
mkf "$L" all2 "before
"
for i in $(seq 30); do mkf "$L" "rw$i" "reopen $i
"; done
OPTS="upperdir=$U,workdir=$W,lowerdir=$L"

# ---------------------------------------------------------------- 1. auto
um_mount "$M" "$OPTS" -d || finish
if [ "$PT" -eq 1 ]; then
	expect_eq "the daemon took passthrough at INIT" 1 \
		"$(grep -c 'INIT: asking for passthrough' "${_log_of[$M]}")"
else
	expect_eq "no passthrough asked for: the kernel offers none" 0 \
		"$(grep -c 'INIT: asking for passthrough' "${_log_of[$M]}")"
fi

w0=$(ops "$M" WRITE)
r0=$(ops "$M" READ)
t dd if=/dev/urandom of="$T/data" bs=64k count=16 status=none
t dd if="$T/data" of="$M/new" bs=64k conv=fsync status=none
expect_eq "a new file reads back as written" "$(md5sum <"$T/data")" "$(t cat "$M/new" | md5sum)"
t sh -c 'echo 3 > /proc/sys/vm/drop_caches'
expect_eq "and after the caches are dropped" "$(md5sum <"$T/data")" "$(t cat "$M/new" | md5sum)"
expect_eq "upper holds it" "$(md5sum <"$T/data")" "$(md5sum <"$U/new")"
if [ "$PT" -eq 1 ]; then
	expect_eq "writing a new file sent no WRITE" "$w0" "$(ops "$M" WRITE)"
	expect_eq "reading it back sent no READ" "$r0" "$(ops "$M" READ)"
	expect_eq "reading a lower file is read through the daemon" "lower one" "$(t cat "$M/lowfile")"
	[ "$(ops "$M" READ)" -gt "$r0" ] && pass "that sent READ" || fail "reading a lower file sent no READ"
fi

# A kept descriptor on a lower file, then a copy-up by an append.
watch_start "$M/keep"
expect_eq "watcher opened the lower file" OPEN "$WREPLY"
watch_ask read
expect_eq "watcher reads the lower data" "DATA kept|" "$WREPLY"
if t sh -c "echo more >> '$M/keep'"; then pass "append beside a kept lower descriptor"; else fail "append beside a kept lower descriptor failed"; fi
watch_ask read
expect_eq "the kept descriptor sees the copy-up's new data" "DATA kept|more|" "$WREPLY"
expect_eq "a new open sees it" "kept
more" "$(t cat "$M/keep")"
watch_stop

# A kept descriptor on an upper file: truncate, append, overwrite by path.
printf 'upper data\n' >"$M/up"
watch_start "$M/up"
expect_eq "watcher opened the upper file" OPEN "$WREPLY"
t truncate -s 5 "$M/up"
watch_ask read
expect_eq "kept upper descriptor sees a truncate by path" "DATA upper" "$WREPLY"
t sh -c "printf '+tail' >> '$M/up'"
watch_ask read
expect_eq "and an append through another open" "DATA upper+tail" "$WREPLY"
t sh -c "printf 'U' | dd of='$M/up' bs=1 seek=0 conv=notrunc status=none"
watch_ask read
expect_eq "and an overwrite" "DATA Upper+tail" "$WREPLY"
t chmod 600 "$M/up"
t mv "$M/up" "$M/up2"
watch_ask read
expect_eq "and still reads after chmod and rename" "DATA Upper+tail" "$WREPLY"
watch_stop
expect_eq "new open after it all" "Upper+tail" "$(t cat "$M/up2")"

# ---------------------------------------------------------------- 2. space
used() { local b f s; read -r b f s < <(stat -f -c '%b %f %S' "$T/t"); echo $(((b - f) * s / 1024)); }
sync
k0=$(used)
t dd if=/dev/zero of="$M/big" bs=1M count=24 status=none
k1=$(used)
[ $((k1 - k0)) -ge 20000 ] && pass "24 MiB written take space in upper" ||
	fail "24 MiB written: upper grew by ${k0}->${k1} KiB only"
t rm "$M/big"
sync
k2=
for i in $(seq 50); do
	k2=$(used)
	[ $((k2 - k0)) -lt 4096 ] && break
	sleep 0.1
done
[ $((k2 - k0)) -lt 4096 ] && pass "removed after close, its space is back" ||
	fail "removed after close: upper still uses $((k2 - k0)) KiB more than before (a backing file kept open?)"
um_umount "$M"

# ---------------------------------------------------------------- 3. all
um_mount "$M" "$OPTS,passthrough=all" -d || finish
reads_direct "all: a lower file reads" "all one" "$M/all1"

watch_start "$M/all2"
expect_eq "all: watcher opened the lower file" OPEN "$WREPLY"
watch_ask read
expect_eq "all: watcher reads it" "DATA before|" "$WREPLY"
if [ "$PT" -eq 1 ]; then
	expect_probe "all: opening it for writing meanwhile: ETXTBSY" ETXTBSY open "$M/all2" w
	expect_probe "all: O_TRUNC meanwhile: ETXTBSY" ETXTBSY open "$M/all2" rt
	expect_probe "all: truncate meanwhile: ETXTBSY" ETXTBSY truncate "$M/all2" 3
	expect_eq "all: nothing was copied up by them" absent "$([ -e "$U/all2" ] && echo present || echo absent)"
	expect_probe "all: chmod meanwhile works" OK chmod "$M/all2" 0640
	expect_eq "all: a new open reads the data" "before" "$(t cat "$M/all2")"
	watch_ask read
	expect_eq "all: the kept descriptor still reads it" "DATA before|" "$WREPLY"
	watch_stop
	expect_probe "all: once it is closed, writing works" OK write "$M/all2"
	# The kernel tells the daemon of a close in the background: an open
	# for writing right after the last one (same process, no fork in
	# between) must still work, the daemon waiting for that release.
	bad=0
	for i in $(seq 30); do
		got=$(probe_out rewrite "$M/rw$i")
		[ "$got" == OK ] || { bad=$((bad + 1)); log "rw$i: $got"; }
	done
	expect_eq "all: reopened for writing right after a close: works, 30 times" 0 "$bad"
else
	if t sh -c "echo after >> '$M/all2'"; then pass "all (no passthrough): append"; else fail "all (no passthrough): append failed"; fi
	watch_ask read
	expect_eq "all (no passthrough): the kept descriptor follows the copy-up" "DATA before|after|" "$WREPLY"
	watch_stop
fi
t sh -c "echo after > '$M/all2'"
reads_direct "all: a new open reads what was written" "after" "$M/all2"
expect_eq "all: upper holds it" "after" "$(cat "$U/all2")"
um_umount "$M"

# A read-only union: nothing can be copied up, so auto passes lower
# files through.
um_mount "$M" "lowerdir=$L,passthrough=auto" -d || finish
reads_direct "read-only union: a lower file reads" "lower one" "$M/lowfile"
um_umount "$M"

# ---------------------------------------------------------------- 4. off
um_mount "$M" "$OPTS,passthrough=off" -d || finish
expect_eq "off: nothing asked at INIT" 0 "$(grep -c 'INIT: asking for passthrough' "${_log_of[$M]}")"
w0=$(ops "$M" WRITE)
t sh -c "echo x > '$M/offfile'"
[ "$(ops "$M" WRITE)" -gt "$w0" ] && pass "off: a write reaches the daemon" || fail "off: a write sent no WRITE"
um_umount "$M"

# ---------------------------------------------------------------- 5. mappings
# Writes through a shared mapping of a passed-through file reach the
# backing file without a request: the times stat shows through the union
# must still follow them, while the file is open and after (the kernel
# would otherwise keep the attributes it cached before the open for
# cache_timeout). Upper on $T, not tmpfs, whose mappings change no times;
# the union must do what a file beside upper does.
# Without passthrough the FUSE page cache writes back later (its times
# change then, not at the write): nothing of this to check.
if [ "$PT" -eq 1 ]; then
	EU=$T/eu EW=$T/ew
	mkdir -p "$EU" "$EW"
	mkf "$L" maplow "lower map"$'\n'
	printf 'native\n' >"$T/native"
	touch -d @946684800 "$T/native"
	native=$(probe_out mapwrite "$T/native")
	native_moved=$([ "$native" != "OK 946684800" ] && echo moved || echo kept)
	log "a mapped write to a file on \$T: mtime $native_moved ($native)"
	um_mount "$M" "upperdir=$EU,workdir=$EW,lowerdir=$L,passthrough=auto" || finish
	printf 'upper map\n' >"$M/mapup"
	for f in mapup maplow; do
		t touch -d @946684800 "$M/$f"
		expect_eq "$f: mtime set" 946684800 "$(t stat -c %Y "$M/$f")"
		got=$(probe_out mapwrite "$M/$f")
		expect_match "$f: a mapped write went through" '^OK [0-9]+$' "$got"
		expect_eq "$f: mtime while open after a mapped write: $native_moved" "$native_moved" \
			"$([ "$got" != "OK 946684800" ] && echo moved || echo kept)"
		expect_eq "$f: mtime after close, as upper has it" "$(stat -c %Y "$EU/$f")" "$(t stat -c %Y "$M/$f")"
	done
	expect_eq "mapup: the mapped write's data" "Upper map" "$(t cat "$M/mapup")"
	expect_eq "maplow: the mapped write's data, copied up" "Lower map" "$(cat "$EU/maplow")"
	# Not asked while open: after the close, a stat(1) that asks for the
	# mtime alone (statx) must not get what the kernel cached before.
	t touch -d @946684800 "$M/mapup"
	expect_eq "mapup: mtime set again" 946684800 "$(t stat -c %Y "$M/mapup")"
	expect_probe "mapup: a mapped write, no stat while open" OK mapwrite "$M/mapup" quiet
	expect_eq "mapup: mtime after close, asked alone, as upper has it" "$(stat -c %Y "$EU/mapup")" \
		"$(t stat -c %Y "$M/mapup")"
	# A mapping outlives its descriptor: written after the close, and
	# stat before and after, the second a little later (the union lets
	# the kernel cache such a file's attributes for a second at most).
	t touch -d @946684800 "$M/mapup"
	expect_eq "mapup: mtime set once more" 946684800 "$(t stat -c %Y "$M/mapup")"
	got=$(probe_out mapwrite "$M/mapup" closed)
	expect_match "mapup: a mapped write after the close went through" '^OK [0-9]+$' "$got"
	expect_eq "mapup: mtime 1.1 s after a write through a mapping kept past close: $native_moved" \
		"$native_moved" "$([ "$got" != "OK 946684800" ] && echo moved || echo kept)"
	expect_eq "mapup: the data written after the close" "Upper map" "$(t cat "$M/mapup")"
	um_umount "$M"
else
	log "no passthrough: mappings not checked"
fi

# ---------------------------------------------------------------- 6. SIGTERM
# The daemon ends with a passthrough file still open: it frees that
# handle with the session gone, and must exit 0 (not crash on the
# backing id the connection already dropped).
um_mount "$M" "$OPTS,passthrough=auto" || finish
printf 'held\n' >"$M/held"
exec 7<"$M/held"
expect_eq "a held upper file reads" held "$(head -n1 <&7)"
pid=${_pid_of[$M]}
kill -TERM "$pid"
rc=0
if ! timeout 10 tail --pid="$pid" -f /dev/null; then
	fail "SIGTERM with a file open: daemon still running after 10s"
	kill -KILL "$pid"
fi
wait "$pid" || rc=$?
exec 7<&-
expect_eq "SIGTERM with a passthrough file open: exit status" 0 "$rc"
unset '_pid_of[$M]'
timeout 10 umount -l "$M" 2>/dev/null
_forget_mount "$M"

finish
