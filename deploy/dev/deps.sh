#!/usr/bin/env bash
# Installs the Debian packages Shomei's development set-up and tests use, when
# they are missing: SoftHSM2 (the development HSM), p11-kit (to put it behind
# a server, as a network HSM), OpenSC's pkcs11-tool and OpenSSL (clients that
# nobody here wrote, to check our output), and PostgreSQL with psql (the store
# at national scale, issue 12; tests start their own throwaway server), and
# what checks the deployment files and the repository page (issue 13).
set -euo pipefail

need=()
command -v softhsm2-util >/dev/null 2>&1 || need+=(softhsm2)
command -v pkcs11-tool >/dev/null 2>&1 || need+=(opensc)
command -v p11-kit >/dev/null 2>&1 || need+=(p11-kit)
compgen -G '/usr/lib/*/pkcs11/p11-kit-client.so' >/dev/null || need+=(p11-kit-modules)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v gcc >/dev/null 2>&1 || need+=(gcc libc6-dev)
[ -f /usr/share/i18n/charmaps/EUC-JP.gz ] || need+=(locales)   # the JIS tables are cross-checked against it
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || need+=(postgresql)   # a throwaway server for the tests (internal/testenv/pg)
command -v psql >/dev/null 2>&1 || need+=(postgresql-client)
command -v runuser >/dev/null 2>&1 || need+=(util-linux)
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)   # checks deploy/systemd's units (issue 13)
command -v promtool >/dev/null 2>&1 || need+=(prometheus)        # checks and unit-tests deploy/prometheus's rules
command -v chromium >/dev/null 2>&1 || need+=(chromium)          # the repository page, in a real headless browser
[ -n "$(fc-list :lang=ja 2>/dev/null)" ] || need+=(fontconfig fonts-ipafont-gothic)   # Japanese text in its screenshots

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
echo "deps: installing ${need[*]}" >&2
sudo=()
if [ "$(id -u)" != 0 ]; then
  sudo=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
# Packages that ship a daemon (prometheus) must not start it here: when no
# policy says so already, one that refuses every start stands for the
# install and goes after it.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
  "${sudo[@]}" chmod 755 "$policy"
  trap '"${sudo[@]}" rm -f "$policy"' EXIT
fi
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
echo "deps: installed ${need[*]}" >&2
