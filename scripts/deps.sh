#!/bin/sh
# Installs what building and testing Postern needs on Debian 12. As root it
# runs apt-get (and npm for the browser tests); otherwise it prints the
# command and stops.
set -eu

DEBS="build-essential pkg-config clang libclang-rt-14-dev libssl-dev \
libevent-dev libsqlite3-dev sqlite3 liboath-dev oathtool \
libconfig-dev libgmime-3.0-dev libargon2-dev libgumbo-dev libqrencode-dev \
libcairo2-dev libpango1.0-dev libqpdf-dev libytnef0-dev libcmocka-dev librnp-dev rnp gnupg \
libpq-dev postgresql-15 \
python3 python3-pytest python3-aiosmtpd python3-psycopg2 swaks openssl poppler-utils qpdf \
iproute2 nftables fonts-dejavu-core fonts-noto-core fonts-noto-cjk chromium \
postfix ansible ansible-lint lintian debhelper devscripts dpkg-dev fakeroot"

missing=""
for p in $DEBS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
	    missing="$missing $p"
done

# The machine image may ship its own Node.js with npm; Debian's npm would
# conflict with it, so it is only wanted when there is no npm at all.
command -v npm >/dev/null 2>&1 || missing="$missing nodejs npm"

if [ -n "$missing" ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "missing Debian packages; run as root:" >&2
		echo "  apt-get update && apt-get install -y$missing" >&2
		exit 1
	fi
	echo "deps: installing$missing"
	export DEBIAN_FRONTEND=noninteractive
	# Postfix is configured by the tests and the playbook, not by debconf.
	echo "postfix postfix/main_mailer_type select No configuration" |
	    debconf-set-selections
	apt-get update -qq
	# shellcheck disable=SC2086
	apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

# Browser tests: playwright-core drives the Debian chromium (no download).
ROOT=$(cd "$(dirname "$0")/.." && pwd)
if [ ! -d "$ROOT/tests/browser/node_modules/playwright-core" ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "missing playwright-core; run: (cd tests/browser && npm ci)" >&2
		exit 1
	fi
	(cd "$ROOT/tests/browser" && npm ci --no-audit --no-fund >/dev/null)
fi
exit 0
