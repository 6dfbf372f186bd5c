#!/bin/sh
# End-to-end test across real network boundaries (tests/e2e): LAN, DMZ
# and Internet network namespaces, the Ansible playbook, Postfix and both
# daemons. Needs root and network namespaces; without them it says so and
# exits 0. Bounded: the whole run is killed after E2E_TIMEOUT seconds.
set -eu

cd "$(dirname "$0")/.."
B=${POSTERN_BUILD:-$(pwd)/build}
E2E_TIMEOUT=${E2E_TIMEOUT:-600}

if [ "$(id -u)" != 0 ]; then
	echo "e2e: SKIPPED: needs root (network namespaces, nftables, Postfix)"
	exit 0
fi
probe="pe-probe-$$"
if ! ip netns add "$probe" 2>/dev/null; then
	echo "e2e: SKIPPED: no network namespace support here"
	exit 0
fi
ip netns del "$probe"

for t in ansible-playbook postfix nft swaks; do
	command -v "$t" >/dev/null || {
		echo "e2e: $t is missing; run make deps" >&2
		exit 1
	}
done

export POSTERN_BUILD="$B"
# The test removes its namespaces itself; this catches a run killed by the
# timeout (names are the tag plus one letter, interfaces live inside them).
E2E_TAG="pe$(($$ % 100000))"
export E2E_TAG
cleanup() {
	for ns in $(ip netns list | awk -v t="$E2E_TAG" \
	    'length($1) == length(t) + 1 && index($1, t) == 1 { print $1 }'); do
		for pid in $(ip netns pids "$ns"); do kill -9 "$pid" 2>/dev/null || true; done
		ip netns del "$ns" 2>/dev/null || true
	done
	[ "${POSTERN_E2E_KEEP:-0}" = 1 ] || rm -rf /tmp/postern-e2e-"$E2E_TAG"-*
}
trap cleanup EXIT INT TERM

rc=0
# shellcheck disable=SC2086
timeout -k 10 "$E2E_TIMEOUT" /usr/bin/python3 -m pytest -q \
    -p no:cacheprovider tests/e2e ${PYTEST_ARGS:-} "$@" || rc=$?
[ "$rc" = 124 ] && echo "e2e: FAILED: timed out after ${E2E_TIMEOUT}s" >&2
exit "$rc"
