#!/bin/sh
# Installs the reference tools `make bench` measures Postern against:
# smtp-source/smtp-sink and a private Postfix (postfix), Dovecot LMTP
# (dovecot-core, dovecot-lmtpd), nginx (nginx-light), wrk, and PostgreSQL
# with its Python client (postgresql-15, python3-psycopg2). As root it
# runs apt-get; otherwise it prints the command to run. The benchmark never
# uses the packages' system services (it starts private instances of its
# own), so the install does not start them either: without a policy-rc.d,
# one that refuses service starts is in place for the time of apt-get.
set -u
PKGS="postfix dovecot-core dovecot-lmtpd nginx-light wrk openssl eatmydata
    postgresql-15 python3-psycopg2"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
	    missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
	echo "bench-deps: missing:$missing; install them with:" >&2
	echo "  sudo apt-get install -y$missing" >&2
	exit 0
fi
echo "bench-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
if [ ! -e /usr/sbin/policy-rc.d ]; then
	printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
	chmod 0755 /usr/sbin/policy-rc.d
	trap 'rm -f /usr/sbin/policy-rc.d' EXIT
	trap 'exit 1' INT TERM
fi
# postfix asks what kind of mail system this is: "No configuration"
# leaves the system's Postfix unconfigured and stopped.
echo "postfix postfix/main_mailer_type select No configuration" |
    debconf-set-selections 2>/dev/null || true
apt-get install -y -q --no-install-recommends $missing >/dev/null 2>&1 || {
	apt-get update -q >/dev/null 2>&1
	apt-get install -y -q --no-install-recommends $missing >/dev/null ||
	    echo "bench-deps: apt-get install$missing failed; the benchmark" \
		"prints n/a for what is missing" >&2
}
exit 0
