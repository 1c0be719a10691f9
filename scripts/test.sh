#!/usr/bin/env bash
# Build with warnings as errors and run every test (unit + integration).
# Integration tests mount real unions and need root and /dev/fuse; without
# them they report SKIP (exit 77) rather than pass.
set -uo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh || exit 1
builddir=${BUILDDIR:-build}
if [ ! -d "$builddir" ]; then
	meson setup "$builddir" -Dwerror=true -Dtests=enabled "$@" || exit 1
else
	# A build dir made by demo.sh (or by hand) may lack these.
	meson configure "$builddir" -Dwerror=true -Dtests=enabled "$@" || exit 1
fi
meson compile -C "$builddir" || exit 1

meson test -C "$builddir" --print-errorlogs --num-processes 1
rc=$?

# One plain closing line for whoever reads the log last.
log="$builddir/meson-logs/testlog.json"
if [ -f "$log" ]; then
	python3 - "$log" <<'PY' || true
import json, sys
c = {}
for line in open(sys.argv[1]):
    r = json.loads(line)["result"]
    c[r] = c.get(r, 0) + 1
ok = c.get("OK", 0) + c.get("EXPECTEDFAIL", 0)
bad = sum(v for k, v in c.items() if k not in ("OK", "EXPECTEDFAIL", "SKIP"))
print(f"tests: {ok} passed, {bad} failed, {c.get('SKIP', 0)} skipped")
PY
fi
exit $rc
