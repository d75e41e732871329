#!/bin/sh
# Makes the consortium's TLS and signing material for the local consortium: the registry and
# three replicas (shipper-acme, carrier-oceanic, customs-nl).
#
# Usage: deploy/consortium/issue-certificates.sh [LADING_BIN] [OUT_DIR]
#   LADING_BIN  the lading binary (default: `lading` on PATH, else target/release/lading)
#   OUT_DIR     where the material goes (default: ./lading-consortium)
#
# It writes, with `lading ca init`, `lading ca issue` and `lading keygen`:
#   $CA_DIR/ca.crt.pem, ca.key.pem     the consortium CA (CA_DIR defaults to OUT_DIR/ca).
#                                      The CA key never goes to a server: keep it here.
#   OUT_DIR/registry/                  -> /etc/lading/pki/registry/ on the registry's host
#       ca.crt.pem                     the trust anchor (server.client_ca, reconcile.ca)
#       registry.crt.pem, .key.pem     the registry's consortium certificate: its HTTPS server
#                                      certificate and the client certificate it reconciles with
#       registry.jwk, registry.jwk.pub the registry's checkpoint signing key pair (a real key,
#                                      made here by `lading keygen`; never a fixture TEST key)
#   OUT_DIR/<party>/                   -> /etc/lading/pki/<party>/ on that party's replica host
#       ca.crt.pem, <party>.crt.pem, <party>.key.pem, registry.jwk.pub
#
# The configurations in deploy/consortium/*.toml and deploy/compose.yaml expect exactly this
# layout under /etc/lading/pki/.
#
# Host names (the --server-name values of each certificate, space-separated; the first one is
# the name the others use in their URLs). The defaults are the service names in compose.yaml:
#   REGISTRY_NAMES  default "registry localhost 127.0.0.1"
#   SHIPPER_NAMES   default "replica-shipper"
#   CARRIER_NAMES   default "replica-carrier"
#   CUSTOMS_NAMES   default "replica-customs"
#   REGISTRY_KID    the registry key's kid (default "registry:<this year>")
#
# Safe to run again: the CA, a certificate or the key that already exists is kept as it is
# (`lading` never overwrites one). To renew a certificate, move its directory away and rerun.
set -eu

script_dir=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd)
if [ "$#" -ge 1 ] && [ -n "$1" ]; then
    LADING=$1
elif command -v lading > /dev/null 2>&1; then
    LADING=lading
else
    LADING=$script_dir/../../target/release/lading
fi
OUT=${2:-./lading-consortium}
CA_DIR=${CA_DIR:-$OUT/ca}
REGISTRY_NAMES=${REGISTRY_NAMES:-registry localhost 127.0.0.1}
SHIPPER_NAMES=${SHIPPER_NAMES:-replica-shipper}
CARRIER_NAMES=${CARRIER_NAMES:-replica-carrier}
CUSTOMS_NAMES=${CUSTOMS_NAMES:-replica-customs}
REGISTRY_KID=${REGISTRY_KID:-registry:$(date -u +%Y)}

if ! "$LADING" --version > /dev/null 2>&1; then
    echo "issue-certificates: cannot run the lading binary '$LADING' (give its path as the first argument)" >&2
    exit 1
fi

# New directories hold private keys: owner only.
if [ ! -d "$OUT" ]; then
    mkdir -p -m 700 "$OUT"
fi

# --- the consortium CA, once ---
if [ -e "$CA_DIR/ca.crt.pem" ]; then
    echo "ok       CA                $CA_DIR/ca.crt.pem (kept)"
elif [ -e "$CA_DIR/ca.key.pem" ]; then
    echo "issue-certificates: $CA_DIR/ca.key.pem exists without ca.crt.pem; refusing to guess" >&2
    exit 1
else
    "$LADING" ca init --dir "$CA_DIR"
fi

# issue WHO NAMES: the registry's certificate (WHO = registry) or a party's, as a server
# certificate for NAMES too, into OUT/WHO.
issue() {
    issue_who=$1
    issue_names=$2
    issue_dir=$OUT/$issue_who
    if [ -e "$issue_dir/$issue_who.crt.pem" ] && [ -e "$issue_dir/$issue_who.key.pem" ]; then
        printf 'ok       %-17s %s (kept)\n' "$issue_who" "$issue_dir/$issue_who.crt.pem"
        return 0
    fi
    if [ -e "$issue_dir/$issue_who.crt.pem" ] || [ -e "$issue_dir/$issue_who.key.pem" ]; then
        echo "issue-certificates: $issue_dir holds half of $issue_who's certificate and key; move it away and rerun" >&2
        exit 1
    fi
    set -f
    set --
    for issue_name in $issue_names; do
        set -- "$@" --server-name "$issue_name"
    done
    set +f
    if [ "$issue_who" = registry ]; then
        set -- --registry "$@"
    else
        set -- --party "$issue_who" "$@"
    fi
    "$LADING" ca issue --dir "$CA_DIR" "$@" --out "$issue_dir"
}

# --- the registry: its certificate and its signing key ---
issue registry "$REGISTRY_NAMES"
if [ -e "$OUT/registry/registry.jwk" ]; then
    echo "ok       registry key      $OUT/registry/registry.jwk (kept)"
    if [ ! -e "$OUT/registry/registry.jwk.pub" ]; then
        echo "issue-certificates: $OUT/registry/registry.jwk.pub is missing; restore it from the registry ($OUT/registry/registry.jwk is kept)" >&2
        exit 1
    fi
elif [ -e "$OUT/registry/registry.jwk.pub" ]; then
    echo "issue-certificates: $OUT/registry/registry.jwk.pub exists without its private key; refusing to make a new pair beside it" >&2
    exit 1
else
    "$LADING" keygen --kid "$REGISTRY_KID" --out "$OUT/registry/registry.jwk"
fi

# --- the parties' replicas ---
issue shipper-acme "$SHIPPER_NAMES"
issue carrier-oceanic "$CARRIER_NAMES"
issue customs-nl "$CUSTOMS_NAMES"

# Each replica checks checkpoints with the registry's public key: put a copy beside its
# certificate, so one directory is all a party's host needs.
for party in shipper-acme carrier-oceanic customs-nl; do
    if ! cmp -s "$OUT/registry/registry.jwk.pub" "$OUT/$party/registry.jwk.pub"; then
        cp "$OUT/registry/registry.jwk.pub" "$OUT/$party/registry.jwk.pub"
        chmod 644 "$OUT/$party/registry.jwk.pub"
    fi
done

echo
echo "Consortium material in $OUT:"
printf '  %-40s %s\n' "$CA_DIR/" "the CA: stays here (its key never goes to a server)"
for who in registry shipper-acme carrier-oceanic customs-nl; do
    printf '  %-40s -> %s\n' "$OUT/$who/" "/etc/lading/pki/$who/ on $who's host"
done
