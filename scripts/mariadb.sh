#!/usr/bin/env bash
# A throwaway MariaDB for tests and benchmarks, on 127.0.0.1 only.
#   scripts/mariadb.sh start DIR [PORT]   -> prints the DSN (mysql://root@127.0.0.1:PORT/dynamo)
#   scripts/mariadb.sh stop DIR
# Root gets an empty password; the data directory lives in DIR and goes away
# with it. Recipe and timings: docs/TESTING.md.
set -euo pipefail
cmd=${1:?usage: mariadb.sh start|stop DIR [PORT]}
dir=${2:?usage: mariadb.sh start|stop DIR [PORT]}
port=${3:-3307}
user=$(id -un)
find_bin() { command -v "$1" 2>/dev/null || { [ -x "/usr/sbin/$1" ] && echo "/usr/sbin/$1"; } || true; }
case "$cmd" in
start)
  mariadbd=$(find_bin mariadbd); install=$(find_bin mariadb-install-db)
  if [ -z "$mariadbd" ] || [ -z "$install" ]; then
    echo "mariadb.sh: mariadbd not found (scripts/install-test-deps.sh installs it)" >&2; exit 1
  fi
  mkdir -p "$dir"
  if [ ! -d "$dir/data/mysql" ]; then
    "$install" --no-defaults --datadir="$dir/data" --user="$user" \
      --auth-root-authentication-method=normal --skip-test-db >"$dir/install.log" 2>&1
  fi
  "$mariadbd" --no-defaults --datadir="$dir/data" --socket="$dir/mysqld.sock" --port="$port" \
    --bind-address=127.0.0.1 --pid-file="$dir/mysqld.pid" --log-error="$dir/error.log" --user="$user" \
    --skip-name-resolve --innodb-buffer-pool-size=${DYNAMO_MARIADB_POOL:-256M} --innodb-log-file-size=256M \
    --innodb-flush-log-at-trx-commit=2 --max-connections=500 --max-allowed-packet=64M >/dev/null 2>&1 &
  for _ in $(seq 1 200); do
    if mariadb-admin --no-defaults --socket="$dir/mysqld.sock" -uroot ping >/dev/null 2>&1; then
      mariadb --no-defaults --socket="$dir/mysqld.sock" -uroot -e "CREATE DATABASE IF NOT EXISTS dynamo"
      echo "mysql://root@127.0.0.1:$port/dynamo"
      exit 0
    fi
    sleep 0.05
  done
  echo "mariadb.sh: server did not start; see $dir/error.log" >&2
  tail -20 "$dir/error.log" >&2 || true
  exit 1 ;;
stop)
  if [ -f "$dir/mysqld.pid" ]; then
    pid=$(cat "$dir/mysqld.pid")
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || exit 0; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi ;;
*) echo "usage: mariadb.sh start|stop DIR [PORT]" >&2; exit 2 ;;
esac
