#!/bin/sh
# Runs each cmocka test binary and prints one summary line in the form CI
# reads. Skipped tests are counted and named: a run with skips never reads
# as a clean pass, and under CI (CI=true) a skip fails the run, since CI
# has every dependency and the corpora.
set -u
pass=0 fail=0 skip=0 skipped=""
out=$(mktemp) || exit 1
trap 'rm -f "$out"' EXIT
for t in "$@"; do
	"$t" >"$out" 2>&1
	rc=$?
	cat "$out"
	# cmocka names each skipped test on a line of its own, twice.
	names=$(sed -n 's/^\[  SKIPPED \] \([A-Za-z_][A-Za-z0-9_]*\)$/\1/p' \
	    "$out" | sort -u)
	for n in $names; do
		skip=$((skip + 1))
		skipped="$skipped $(basename "$t"):$n"
	done
	if [ "$rc" -eq 0 ]; then
		pass=$((pass + 1))
	else
		fail=$((fail + 1))
		echo "FAILED: $t"
	fi
done
if [ "$skip" -gt 0 ]; then
	for s in $skipped; do echo "SKIPPED: $s"; done
	echo "unit: $pass binaries passed with $skip tests SKIPPED," \
	    "$fail failed"
	if [ "${CI:-}" = true ]; then
		echo "unit: FAILED: skipped tests under CI=true"
		exit 1
	fi
else
	echo "unit: $pass passed, $fail failed"
fi
[ "$fail" -eq 0 ]
