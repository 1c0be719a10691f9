#!/bin/sh
# Render a man page with every groff warning on; any diagnostic fails.
# Used by `meson test --suite doc`. Exit 77 (skip) when groff is missing.
# Usage: man/lint.sh PAGE...
set -u

if ! command -v groff >/dev/null 2>&1; then
	echo "groff not found (apt-get install groff-base): skipping" >&2
	exit 77
fi

status=0
for page in "$@"; do
	out=$(LC_ALL=C.UTF-8 groff -man -ww -z "$page" 2>&1)
	rc=$?
	if [ "$rc" -ne 0 ] || [ -n "$out" ]; then
		printf '%s: groff -man -ww -z (exit %d):\n%s\n' "$page" "$rc" "$out" >&2
		status=1
	fi
	# man-db's own check, at the width a terminal shows it.
	if command -v man >/dev/null 2>&1; then
		out=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$page" 2>&1 >/dev/null)
		rc=$?
		if [ "$rc" -ne 0 ] || [ -n "$out" ]; then
			printf '%s: man --warnings -l (exit %d):\n%s\n' "$page" "$rc" "$out" >&2
			status=1
		fi
	fi
done
[ "$status" -eq 0 ] && echo "ok: $*"
exit "$status"
