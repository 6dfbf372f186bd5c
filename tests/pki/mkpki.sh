#!/bin/sh
# Builds the test PKI in OUTDIR with the openssl CLI. Idempotent: a complete
# PKI (stamp file present) is left alone; concurrent callers serialise on a
# lock. EC keys everywhere except alice (RSA is the point there).
#
#   root-ca, intermediate-ca        trusted chain (ca-bundle.pem = both)
#   alice@example.com   RSA-2048    sender, emailProtection
#   carol@example.com   ECDSA P-256 sender, emailProtection
#   bob@example.net                 recipient, valid
#   expired@example.net             recipient, expired in 2021
#   wrongeku@example.net            recipient, EKU serverAuth only
#   untrusted@example.net           recipient, issued by rogue-ca
#   nosan@example.net               recipient, address only in the subject DN
#   gateway@relay-to-webmail.private  tunnel signer
#   gw-tls, portal-tls              TLS servers for 127.0.0.1 / localhost
#   gw-client                       TLS client certificate of the gateway
#   gw-tls-rsa, gw-client-rsa       the same two with RSA-2048 keys
#   alice.p12, bob.p12              PKCS#12 bundles, password "secret"
set -eu

[ $# -eq 1 ] || { echo "usage: $0 OUTDIR" >&2; exit 2; }
mkdir -p "$1"
OUT=$(cd "$1" && pwd)
STAMP=$OUT/.complete-v3
[ -f "$STAMP" ] && exit 0

exec 9>"$OUT/.lock"
flock 9
[ -f "$STAMP" ] && exit 0

cd "$OUT"
umask 077
# ext.cnf expands $ENV::PKI_EMAIL whenever it is read.
PKI_EMAIL=none@invalid
export PKI_EMAIL

ec_key() {
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
	    -out "$1.key" 2>/dev/null
}

cat > ext.cnf <<'EOF'
[req]
distinguished_name = dn
[dn]

[ca]
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[smime]
basicConstraints = CA:false
keyUsage = critical, digitalSignature, nonRepudiation, keyEncipherment, keyAgreement
extendedKeyUsage = emailProtection
subjectAltName = email:$ENV::PKI_EMAIL
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid

[wrongeku]
basicConstraints = CA:false
keyUsage = critical, digitalSignature, keyEncipherment, keyAgreement
extendedKeyUsage = serverAuth
subjectAltName = email:$ENV::PKI_EMAIL

[nosan]
basicConstraints = CA:false
keyUsage = critical, digitalSignature, keyEncipherment, keyAgreement
extendedKeyUsage = emailProtection

[server]
basicConstraints = CA:false
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost

[client]
basicConstraints = CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectAltName = DNS:gateway.localhost
EOF

# issue NAME ISSUER SECTION SUBJECT [email]
issue() {
	PKI_EMAIL=${5:-none@invalid}
	export PKI_EMAIL
	openssl req -new -key "$1.key" -subj "$4" -out "$1.csr"
	openssl x509 -req -in "$1.csr" -CA "$2.crt" -CAkey "$2.key" \
	    -CAcreateserial -days 3650 -sha256 -extfile ext.cnf \
	    -extensions "$3" -out "$1.crt" 2>/dev/null
	rm -f "$1.csr"
}

self_ca() {
	ec_key "$1"
	openssl req -new -x509 -key "$1.key" -subj "$2" -days 7300 -sha256 \
	    -config ext.cnf -extensions ca -out "$1.crt" 2>/dev/null
}

self_ca root-ca "/O=Postern Test/CN=Postern Test Root CA"
self_ca rogue-ca "/O=Rogue/CN=Rogue Root CA"
ec_key intermediate-ca
openssl req -new -key intermediate-ca.key \
    -subj "/O=Postern Test/CN=Postern Test Intermediate CA" \
    -out intermediate-ca.csr
openssl x509 -req -in intermediate-ca.csr -CA root-ca.crt -CAkey root-ca.key \
    -CAcreateserial -days 7000 -sha256 -extfile ext.cnf -extensions ca \
    -out intermediate-ca.crt 2>/dev/null
rm -f intermediate-ca.csr
cat root-ca.crt intermediate-ca.crt > ca-bundle.pem

openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 \
    -out alice.key 2>/dev/null
issue alice intermediate-ca smime "/CN=Alice/emailAddress=alice@example.com" \
    alice@example.com
for n in carol bob expired wrongeku untrusted nosan gateway gw-tls \
    portal-tls gw-client; do
	ec_key $n
done
issue carol intermediate-ca smime "/CN=Carol" carol@example.com
issue bob intermediate-ca smime "/CN=Bob" bob@example.net
issue wrongeku intermediate-ca wrongeku "/CN=Wrong EKU" wrongeku@example.net
issue untrusted rogue-ca smime "/CN=Untrusted" untrusted@example.net
issue nosan intermediate-ca nosan "/CN=No SAN/emailAddress=nosan@example.net"
issue gateway intermediate-ca smime "/CN=Postern Gateway" \
    gateway@relay-to-webmail.private
issue gw-tls intermediate-ca server "/CN=localhost"
issue portal-tls intermediate-ca server "/CN=localhost"
issue gw-client intermediate-ca client "/CN=gateway.localhost"
for n in gw-tls-rsa gw-client-rsa; do
	openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 \
	    -out $n.key 2>/dev/null
done
issue gw-tls-rsa intermediate-ca server "/CN=localhost"
issue gw-client-rsa intermediate-ca client "/CN=gateway.localhost"

# An expired certificate needs explicit dates, which only `openssl ca` sets.
mkdir -p ca-db
: > ca-db/index.txt
echo 1000 > ca-db/serial
cat > ca-db/ca.cnf <<EOF
[ca]
default_ca = expired
[expired]
dir = ca-db
database = ca-db/index.txt
serial = ca-db/serial
new_certs_dir = ca-db
default_md = sha256
policy = any
unique_subject = no
copy_extensions = none
[any]
commonName = supplied
EOF
PKI_EMAIL=expired@example.net
export PKI_EMAIL
openssl req -new -key expired.key -subj "/CN=Expired" -out expired.csr
openssl ca -batch -config ca-db/ca.cnf -cert intermediate-ca.crt \
    -keyfile intermediate-ca.key -in expired.csr -out expired.crt \
    -startdate 20200101000000Z -enddate 20210101000000Z \
    -extfile ext.cnf -extensions smime -notext 2>/dev/null
rm -f expired.csr

# Chain files: leaf + intermediate, the way `cert import` receives them.
for n in alice carol bob gateway gw-tls portal-tls gw-client gw-tls-rsa \
    gw-client-rsa; do
	cat $n.crt intermediate-ca.crt > $n-chain.pem
done
for n in alice bob; do
	openssl pkcs12 -export -inkey $n.key -in $n.crt \
	    -certfile intermediate-ca.crt -name "$n" -passout pass:secret \
	    -out $n.p12
done
chmod 0644 ./*.crt ./*.pem ./*.p12

touch "$STAMP"
