#!/usr/bin/env bash
# Check every Detox policy, campaign, partitions and enforcer file of a
# dynamo-policies checkout with `dynamo detox check`.
#
#   scripts/check-production-policies.sh DYNAMO_BINARY POLICIES_DIR
#
# POLICIES_DIR has the dynamo-policies layout: partitions.txt, detox/*.txt,
# detox/campaigns/*.txt, common/enforcer_rules_*.json. Campaign files older
# than 2018 have no Partition line; they get the partition they obviously
# target: *tape* (but not *notape*) -> Tape, *dataops* -> DataOps, else
# Physics. Exit status 1 if any file has a problem; every problem is printed
# as file:line:col: message.
set -euo pipefail

if [[ $# -ne 2 ]]; then
	echo "usage: $0 DYNAMO_BINARY POLICIES_DIR" >&2
	exit 2
fi
dynamo=$1
dir=$2
partitions="$dir/partitions.txt"
[[ -x "$dynamo" ]] || { echo "$0: $dynamo is not executable" >&2; exit 2; }
[[ -f "$partitions" ]] || { echo "$0: $partitions not found" >&2; exit 2; }

failed=0
checked=0

run() {
	checked=$((checked + 1))
	if ! "$dynamo" detox check "$@"; then
		failed=$((failed + 1))
	fi
}

campaign_partition() {
	local base
	base=$(basename "$1")
	case "$base" in
	*notape*) echo DataOps ;;
	*tape*) echo Tape ;;
	*dataops*) echo DataOps ;;
	*) echo Physics ;;
	esac
}

shopt -s nullglob
for f in "$dir"/detox/*.txt; do
	run --policy "$f" --partitions "$partitions"
done
for f in "$dir"/detox/campaigns/*.txt; do
	if grep -q '^[[:space:]]*Partition[[:space:]]' "$f"; then
		run --policy "$f" --partitions "$partitions"
	else
		run --policy "$f" --partitions "$partitions" --partition "$(campaign_partition "$f")"
	fi
done
for f in "$dir"/common/enforcer_rules_*.json; do
	run --enforcer "$f" --partitions "$partitions"
done

echo "checked $checked files, $failed with problems"
[[ $failed -eq 0 ]]
