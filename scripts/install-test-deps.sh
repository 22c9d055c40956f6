#!/usr/bin/env bash
# Installs the real servers and clients the test suite runs against (Debian 12
# packages; see docs/TESTING.md). Idempotent and quick when everything is there.
# Needs root for apt-get. Without root it only reports what is missing.
set -euo pipefail

# command -> package that provides it
declare -A want=(
  [mariadbd]=mariadb-server [mariadb]=mariadb-client
  [gfal-ls]="gfal2-util-scripts python3-gfal2-util gfal2 gfal2-plugin-srm gfal2-plugin-http gfal2-plugin-file libcgsi-gsoap1 libgfal-srm-ifce1"
  [davix-get]=davix [litmus]=litmus [grid-proxy-init]=globus-proxy-utils [voms-proxy-fake]=voms-clients
  [openssl]=openssl [apache2]=apache2 [xrootd]=xrootd-server [xrdfs]=xrootd-client
  [systemd-socket-activate]=systemd
  [chromium]="chromium fonts-dejavu-core"  # the console's browser tests
)
missing=()
for cmd in "${!want[@]}"; do
  if ! command -v "$cmd" >/dev/null 2>&1 && ! [ -x "/usr/sbin/$cmd" ]; then
    missing+=(${want[$cmd]})
  fi
done
# The xrootd plugin for gfal2 has no command of its own.
[ -e /usr/lib/x86_64-linux-gnu/gfal2-plugins/libgfal_plugin_xrootd.so ] || missing+=(gfal2-plugin-xrootd)

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "install-test-deps: missing packages (need root to install): ${missing[*]}" >&2
  exit 1
fi
echo "install-test-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
