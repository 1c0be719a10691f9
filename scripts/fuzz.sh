#!/usr/bin/env bash
# Fuzz the option parser and the on-disk marker decoders with libFuzzer.
#
#   scripts/fuzz.sh [--time SECONDS] [--merge]
#
# Installs clang if it is missing (scripts/deps.sh --fuzz), sets up
# build-fuzz (clang, ASan+UBSan, -Dfuzz=true; FUZZ_BUILDDIR overrides the
# name) and runs each target of tests/fuzz for SECONDS (default 30), the
# targets side by side, each over a scratch copy of its corpus
# (tests/fuzz/corpus/NAME). Exit status 1 when a target finds a crash, a
# leak, undefined behaviour, a broken property, a hang or runaway memory:
# the reproducer's path is printed with the commands that rerun it, and
# the scratch directory is kept. 2 on a usage error.
#
# --merge: afterwards, add to the committed corpus the new inputs that
# reach code or comparisons it did not (libFuzzer -merge=1 keeps a
# minimal set of them; the inputs already there stay). Review and commit
# the new files like any other change.
set -uo pipefail
cd "$(dirname "$0")/.."

usage() {
	awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
}

time=30
merge=false
while [ $# -gt 0 ]; do
	case $1 in
	--time) time=${2:-}; shift $(($# > 1 ? 2 : 1)) ;;
	--time=*) time=${1#--time=}; shift ;;
	--merge) merge=true; shift ;;
	-h | --help) usage; exit 0 ;;
	*) echo "fuzz.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
	esac
done
if ! [[ $time =~ ^[1-9][0-9]*$ ]]; then
	echo "fuzz.sh: --time wants a whole number of seconds > 0, not '$time'" >&2
	exit 2
fi

scripts/deps.sh --fuzz || exit 1

scratch=$(mktemp -d "${TMPDIR:-/tmp}/unionmount-fuzz.XXXXXX") || exit 1
builddir=${FUZZ_BUILDDIR:-build-fuzz}
opts=(-Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false)
targets=(options markers)
# The fuzz binaries only: the rest of the tree is the other builds' job.
if ! {
	if [ ! -d "$builddir" ]; then
		CC=clang meson setup "$builddir" "${opts[@]}"
	else
		meson configure "$builddir" "${opts[@]}"
	fi && meson compile -C "$builddir" "${targets[@]/#/fuzz_}"
} >"$scratch/build.log" 2>&1; then
	cat "$scratch/build.log" >&2
	echo "fuzz.sh: building the fuzz targets in $builddir failed" >&2
	rm -rf "$scratch"
	exit 1
fi
# UBSan reports and carries on unless told to stop: a report must fail.
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}

# -max_len covers the largest seed (501 times lowerdir+=); -timeout and
# -rss_limit_mb turn a hang or a runaway allocation into a failure.
fuzz_flags=(-timeout=10 -rss_limit_mb=2048 -max_len=8192)
declare -A pid
for t in "${targets[@]}"; do
	d=$scratch/$t
	mkdir -p "$d/corpus" "$d/artifacts"
	cp tests/fuzz/corpus/"$t"/* "$d/corpus/"
	dict=()
	[ -f tests/fuzz/"$t".dict ] && dict=(-dict=tests/fuzz/"$t".dict)
	"$builddir/tests/fuzz/fuzz_$t" "${fuzz_flags[@]}" "${dict[@]}" -max_total_time="$time" \
		-print_final_stats=1 -artifact_prefix="$d/artifacts/" "$d/corpus" >"$d/log" 2>&1 &
	pid[$t]=$!
done
echo "fuzz.sh: ${targets[*]} for ${time}s each, in $scratch" >&2

failed=()
for t in "${targets[@]}"; do
	d=$scratch/$t
	wait "${pid[$t]}"
	rc=$?
	found=$(find "$d/artifacts" -type f | sort)
	if [ $rc -ne 0 ] || [ -n "$found" ]; then
		failed+=("$t")
		echo "fuzz.sh: $t FAILED (exit $rc); the end of its log ($d/log):" >&2
		tail -n 40 "$d/log" >&2
		for f in $found; do
			echo "fuzz.sh: reproducer: $f" >&2
			echo "  rerun: $builddir/tests/fuzz/fuzz_$t $f" >&2
			echo "     or: build/tests/fuzz/replay_$t $f   (any build, gcc too)" >&2
		done
		[ -n "$found" ] || echo "fuzz.sh: $t left no reproducer; see its log" >&2
		continue
	fi
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$d/log")
	cov=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$d/log" | grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+/[0-9a-zA-Z]+')
	echo "fuzz.sh: $t ok: ${runs:-?} inputs in ${time}s, $cov" >&2
done

if [ ${#failed[@]} -gt 0 ]; then
	echo "fuzz.sh: failed: ${failed[*]} (scratch kept: $scratch)" >&2
	exit 1
fi

if $merge; then
	for t in "${targets[@]}"; do
		dict=()
		[ -f tests/fuzz/"$t".dict ] && dict=(-dict=tests/fuzz/"$t".dict)
		before=$(find tests/fuzz/corpus/"$t" -type f | wc -l)
		if ! "$builddir/tests/fuzz/fuzz_$t" -merge=1 "${fuzz_flags[@]}" "${dict[@]}" \
			tests/fuzz/corpus/"$t" "$scratch/$t/corpus" >"$scratch/$t/merge.log" 2>&1; then
			echo "fuzz.sh: merging $t failed; see $scratch/$t/merge.log" >&2
			exit 1
		fi
		after=$(find tests/fuzz/corpus/"$t" -type f | wc -l)
		echo "fuzz.sh: $t corpus: $before -> $after inputs" >&2
	done
fi
rm -rf "$scratch"
