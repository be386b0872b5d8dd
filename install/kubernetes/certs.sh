#!/usr/bin/env bash
# Makes the certificates for nodekitd's mutual TLS: a CA, a server certificate for the Service's
# names and a client certificate for buildctl, all signed by that CA, plus the Secret the
# DaemonSet mounts.
#
#   install/kubernetes/certs.sh [-d DIR] [-n NAMESPACE] [-s SERVICE] [--san NAME|IP]...
#
# DIR (default ./nodekit-certs) receives:
#   ca.crt ca.key            the CA (keep ca.key offline; it signs new clients)
#   tls.crt tls.key          nodekitd's server certificate
#   client.crt client.key    a client certificate (CN=buildctl)
#   secret.yaml              Secret nodekitd-tls (ca.crt, tls.crt, tls.key): kubectl apply -f
# Then, from a pod or a node:
#   buildctl --addr tcp://nodekitd.nodekit.svc:2375 --tlscacert DIR/ca.crt \
#     --tlscert DIR/client.crt --tlskey DIR/client.key debug workers
# An existing CA in DIR is reused, so running it again adds new server and client
# certificates that old clients still trust. Needs openssl.
set -euo pipefail

DIR=./nodekit-certs
NAMESPACE=nodekit
SERVICE=nodekitd
EXTRA_SANS=()
DAYS=${NODEKIT_CERT_DAYS:-365}

die() { echo "certs.sh: $*" >&2; exit 1; }

while (($#)); do
	case $1 in
	-d) DIR=${2:?-d needs a directory}; shift 2 ;;
	-n) NAMESPACE=${2:?-n needs a namespace}; shift 2 ;;
	-s) SERVICE=${2:?-s needs a service name}; shift 2 ;;
	--san) EXTRA_SANS+=("${2:?--san needs a name or an IP address}"); shift 2 ;;
	-h | --help) sed -n '2,19p' "$0"; exit 0 ;;
	*) die "unknown argument $1 (see --help)" ;;
	esac
done
command -v openssl >/dev/null || die "openssl is needed (apt-get install openssl)"
mkdir -p "$DIR"
umask 077

# san_list NAME...: "DNS:a,IP:b" for openssl's subjectAltName.
san_list() {
	local out=() name
	for name in "$@"; do
		if [[ $name =~ ^[0-9.]+$ || $name == *:* ]]; then out+=("IP:$name"); else out+=("DNS:$name"); fi
	done
	local IFS=,
	echo "${out[*]}"
}

make_ca() {
	[[ -s $DIR/ca.crt && -s $DIR/ca.key ]] && return 0
	openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
		-keyout "$DIR/ca.key" -out "$DIR/ca.crt" -days "$((DAYS * 10))" -subj "/CN=nodekit CA" \
		-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
		2>/dev/null
}

# sign NAME CN USAGE SANS: NAME.key and NAME.crt signed by the CA.
sign() {
	local name=$1 cn=$2 usage=$3 sans=$4 ext
	ext=$(mktemp)
	{
		echo "basicConstraints=critical,CA:FALSE"
		echo "keyUsage=critical,digitalSignature"
		echo "extendedKeyUsage=$usage"
		[[ -n $sans ]] && echo "subjectAltName=$sans"
	} >"$ext"
	openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
		-keyout "$DIR/$name.key" -out "$DIR/$name.csr" -subj "/CN=$cn" 2>/dev/null
	openssl x509 -req -in "$DIR/$name.csr" -CA "$DIR/ca.crt" -CAkey "$DIR/ca.key" \
		-CAcreateserial -out "$DIR/$name.crt" -days "$DAYS" -extfile "$ext" 2>/dev/null
	rm -f "$DIR/$name.csr" "$ext"
}

write_secret() {
	local key
	{
		echo "apiVersion: v1"
		echo "kind: Secret"
		echo "metadata:"
		echo "  name: nodekitd-tls"
		echo "  namespace: $NAMESPACE"
		echo "type: Opaque"
		echo "data:"
		for key in ca.crt tls.crt tls.key; do
			echo "  $key: $(base64 -w0 <"$DIR/$key")"
		done
	} >"$DIR/secret.yaml"
}

make_ca
server_names=("$SERVICE" "$SERVICE.$NAMESPACE" "$SERVICE.$NAMESPACE.svc"
	"$SERVICE.$NAMESPACE.svc.cluster.local" localhost 127.0.0.1 ::1 "${EXTRA_SANS[@]}")
sign tls nodekitd serverAuth "$(san_list "${server_names[@]}")"
sign client buildctl clientAuth ""
write_secret
rm -f "$DIR/ca.srl"
echo "certs.sh: wrote $DIR (server names: ${server_names[*]}); next: kubectl apply -f $DIR/secret.yaml" >&2
