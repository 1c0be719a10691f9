#!/usr/bin/env bash
# t_corrupt: damaged markers in upper cost the damaged object, not the
# union. An origin attribute that does not decode, in an impure directory
# (where the daemon reads origins): the name is still listed (first listing,
# which writes fallthrus, and later ones) with one log line naming it, a
# lookup of a damaged file fails with EIO, every other name keeps working, and the daemon
# exits cleanly. Nothing in upper is rewritten over the damage.
. "$(dirname "$0")/lib.sh"
setup_test
require_daemon
selftest && skip "damaged unionmount markers mean nothing to kernel overlayfs"

L=$T/l U=$T/u W=$T/w M=$T/m
mkdir -p "$U" "$W" "$M"
mkf "$L" a
mkf "$L" b
mkf "$L" dir/x
mkd "$U" dir
printf 'upper a\n' >"$U/a"
mkd "$U" sub
printf 'upper s\n' >"$U/sub/s"
setfattr -n trusted.unionmount.impure -v y "$U"
setfattr -n trusted.unionmount.origin -v garbage "$U/a"
setfattr -n trusted.unionmount.origin -v 00000000000001zz "$U/sub"

um_mount "$M" "lowerdir=$L,upperdir=$U,workdir=$W" || finish
expect_eq "first listing: every name, the damaged ones too" "a b dir sub" "$(t ls "$M" | tr '\n' ' ' | sed 's/ $//')"
expect_probe "lookup of the damaged file" EIO stat "$M/a"
# A directory's number never comes from its origin (INODE NUMBERS), so its
# lookup does not read it: only the listing meets the damage.
expect_eq "the damaged directory still works" "l:x upper s" "$(t cat "$M/dir/x" | sed 's/dir\///') $(t cat "$M/sub/s")"
expect_eq "the other names work" "l:b|l:dir/x" "$(t cat "$M/b")|$(t cat "$M/dir/x")"
expect_eq "a later listing too" "a b dir sub" "$(t ls "$M" | tr '\n' ' ' | sed 's/ $//')"
expect_eq "log lines name the damaged names" "yes yes" \
	"$(grep -q "'a': its origin attribute does not decode" "${_log_of[$M]}" && echo yes) $(grep -q "'sub': its origin attribute does not decode" "${_log_of[$M]}" && echo yes)"
um_umount "$M"
expect_eq "the damage is left as it was, for unionctl check to report" "garbage 00000000000001zz" \
	"$(getfattr --absolute-names --only-values -n trusted.unionmount.origin "$U/a") $(getfattr --absolute-names --only-values -n trusted.unionmount.origin "$U/sub")"
if got=$(_is_fallthru "$U/b" 1); then
	pass "the first listing completed around the damage: b has its fallthru"
else
	fail "the first listing did not write the fallthru of b: $got"
fi
finish
