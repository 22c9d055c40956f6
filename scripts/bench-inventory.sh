#!/usr/bin/env bash
# The foundation benchmark at CMS scale: generate 100 sites, 300k datasets,
# 3M blocks, 10M block replicas into a throwaway MariaDB, then load them and
# print one JSON line (objects, bytes_per_object, load_seconds,
# raw_stream_seconds). Takes about ten minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'scripts/mariadb.sh stop "$tmp/mariadb"; rm -rf "$tmp"' EXIT
dsn=$(DYNAMO_MARIADB_POOL=6G scripts/mariadb.sh start "$tmp/mariadb" "${PORT:-3399}")
bin/dynamo bench generate --db "$dsn" "$@"
bin/dynamo bench inventory --db "$dsn"
