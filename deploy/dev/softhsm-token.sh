#!/usr/bin/env bash
# Creates the development HSM under VAR (default ./var): a private SoftHSM2
# token directory, a token labelled shomei-dev with random PINs kept in files
# readable only by you, and the configuration file VAR/shomei.yaml that points
# Shomei at them. Nothing touches the system-wide SoftHSM2 set-up. Running it
# again keeps what exists.
set -euo pipefail

var=$(realpath -m "${1:-var}")
label=shomei-dev
conf="$var/softhsm/softhsm2.conf"

umask 077
mkdir -p "$var/softhsm/tokens" "$var/hsm"
if [ ! -f "$conf" ]; then
  cat >"$conf" <<CONF
# Written by deploy/dev/softhsm-token.sh: Shomei's private development token directory.
directories.tokendir = $var/softhsm/tokens
objectstore.backend = file
log.level = ERROR
slots.removable = false
CONF
fi
export SOFTHSM2_CONF="$conf"

# softhsm2-util pads labels with spaces.
count=$(softhsm2-util --show-slots 2>/dev/null | grep -c "Label:[[:space:]]*$label[[:space:]]*\$" || true)
if [ "$count" -gt 1 ]; then
  echo "dev-hsm: $count tokens are labelled $label in $var/softhsm; remove $var to start again" >&2
  exit 1
fi
if [ "$count" -eq 0 ]; then
  # Throwaway development PINs: random, in files only you can read. Existing
  # PIN files are kept, never overwritten.
  for f in user.pin so.pin; do
    [ -s "$var/hsm/$f" ] || head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$var/hsm/$f"
  done
  softhsm2-util --init-token --free --label "$label" \
    --so-pin "$(cat "$var/hsm/so.pin")" --pin "$(cat "$var/hsm/user.pin")" >/dev/null
  echo "dev-hsm: created SoftHSM2 token '$label' in $var/softhsm/tokens" >&2
fi

module=""
for m in /usr/lib/softhsm/libsofthsm2.so /usr/lib/*/softhsm/libsofthsm2.so; do
  if [ -f "$m" ]; then module=$m; break; fi
done
[ -n "$module" ] || { echo "dev-hsm: libsofthsm2.so not found (apt-get install softhsm2)" >&2; exit 1; }

if [ ! -f "$var/shomei.yaml" ]; then
  cat >"$var/shomei.yaml" <<YAML
# Development configuration written by deploy/dev/softhsm-token.sh.
# Relative paths are relative to this file. See deploy/shomei.example.yaml
# for every setting and for pointing Shomei at a real HSM.
store:
  path: shomei.db
hsm:
  module: $module
  module_env:
    SOFTHSM2_CONF: ./softhsm/softhsm2.conf
  token_label: $label
  pin_file: hsm/user.pin
issuers:
  key_algorithm: rsa2048
  validity_years: 10
YAML
  echo "dev-hsm: wrote $var/shomei.yaml" >&2
fi

# The OCSP replica (make run-ocsp): the same development token, its own
# responder keys (shomei-ocsp-dev1-*) and its own bbolt copy. The
# development CA has no clients configured, so no token is needed.
if [ ! -f "$var/shomei-ocsp.yaml" ]; then
  cat >"$var/shomei-ocsp.yaml" <<YAML
# Development OCSP replica configuration written by deploy/dev/softhsm-token.sh.
name: dev1
ca:
  address: 127.0.0.1:8443
store:
  path: ocsp-replica.db
hsm:
  module: $module
  module_env:
    SOFTHSM2_CONF: ./softhsm/softhsm2.conf
  token_label: $label
  pin_file: hsm/user.pin
http_listen: 127.0.0.1:8081
YAML
  echo "dev-hsm: wrote $var/shomei-ocsp.yaml" >&2
fi
