#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs the real servers and clients
# the tests use (when missing; needs root), starts a throwaway MariaDB on a
# free loopback port, runs vet and every test against SQLite and MariaDB,
# and stops the server. With CI=true nothing that is missing is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! scripts/install-test-deps.sh; then
  if [ "${CI:-}" = true ]; then
    echo "test.sh: could not install the test dependencies and CI=true: failing" >&2
    exit 1
  fi
  echo "test.sh: some test dependencies are missing; tests that need them will skip" >&2
fi

tmp=$(mktemp -d)
port=""
for p in $(seq 3316 3399); do
  if ! (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null; then port=$p; break; fi
done
[ -n "$port" ] || { echo "test.sh: no free port for MariaDB" >&2; exit 1; }
cleanup() { scripts/mariadb.sh stop "$tmp/mariadb" || true; rm -rf "$tmp"; }
trap cleanup EXIT

if dsn=$(scripts/mariadb.sh start "$tmp/mariadb" "$port"); then
  export DYNAMO_TEST_MYSQL_DSN="$dsn"
  echo "test.sh: MariaDB for tests at $dsn"
elif [ "${CI:-}" = true ]; then
  echo "test.sh: MariaDB did not start and CI=true: failing" >&2
  exit 1
else
  echo "test.sh: MariaDB unavailable: its test variants will skip" >&2
fi

unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "test.sh: gofmt would change:" >&2; echo "$unformatted" >&2; exit 1
fi
go vet ./...
# Every test under the race detector: the suite is concurrent throughout
# and a race it does not run under is a race nobody sees. -p 2 runs one
# test binary per core of the CI machine (the detector multiplies CPU use
# several times, so more binaries at once only queue and stretch the
# tests' own waits); -timeout bounds one package's binary, the slowest
# (cmd/dynamo) included, leaving the whole run inside CI's 90 minutes.
go test -race -count=1 -p 2 -timeout 45m "$@" ./...

# Every parser of outside input, fuzzed briefly beyond its committed
# corpus (testdata/fuzz/<Name>/), which the run above already replays:
# the SE's SOAP and SURLs, the policy language and enforcer rules,
# configuration, sequence files, injection documents (ours and Dynamo's),
# REST bodies and change-log replay. FUZZTIME each (default 5s); the
# instrumented build is shared through the build cache.
for target in \
  "FuzzDecode ./srm/internal/soapxml" "FuzzParseSURL ./srm/internal/sfn" "FuzzMap ./srm/internal/sfn" \
  "FuzzParseCondition ./internal/policy" "FuzzParsePolicy ./internal/policy" "FuzzParseEnforcerRules ./internal/policy" \
  "FuzzDecode ./internal/yamlconf" "FuzzParseSequences ./scheduler" \
  "FuzzDecodeInjectDoc ./inventory" "FuzzChangeLogReplay ./inventory" \
  "FuzzDecodeDynamoInject ./registry" "FuzzRequestBodies ./registry"; do
  set -- $target
  go test -run '^$' -fuzz "^$1\$" -fuzztime "${FUZZTIME:-5s}" "$2"
done

# CMS's production Detox policies, partitions and enforcer rules must all
# pass `dynamo detox check` (they live beside the checkout, not in it).
policies="${DYNAMO_POLICIES_DIR:-../shared/reference/dynamo-policies}"
if [ -d "$policies" ]; then
  go build -o "$tmp/dynamo" ./cmd/dynamo
  scripts/check-production-policies.sh "$tmp/dynamo" "$policies"
elif [ "${CI:-}" = true ]; then
  echo "test.sh: production policies not found at $policies" >&2
  exit 1
fi
