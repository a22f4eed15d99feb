#!/usr/bin/env bash
# The data-quality gate as used in CI and Makefiles: banter-validate's exit code decides whether the
# pipeline goes on. Run by `make e2e` on the shipped testdata.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=target/release
OUT=$(mktemp -d)

# Good data passes the gate (exit 0) and the next stage runs.
"$BIN/banter-validate" -q testdata/validate/good.jsonl && echo "gate passed: good.jsonl"

# Bad data fails it (exit 1): the `&&` chain stops, and CI sees the code.
if "$BIN/banter-validate" -q testdata/validate/bad.jsonl; then
  echo "bad.jsonl should have failed the gate" >&2; exit 1
else
  code=$?; [ "$code" -eq 1 ] || { echo "expected exit 1, got $code" >&2; exit 1; }
  echo "gate failed as it should: bad.jsonl (exit $code)"
fi

# Malformed input is exit 3 and writes nothing.
set +e; "$BIN/banter-validate" -q testdata/validate/malformed.jsonl -o "$OUT/x.jsonl" 2>/dev/null; code=$?; set -e
[ "$code" -eq 3 ] && [ ! -e "$OUT/x.jsonl" ] && echo "malformed input: exit 3, nothing written"

# A machine-readable report for dashboards.
"$BIN/banter-validate" testdata/validate/good.jsonl testdata/validate/bad.jsonl --min-score 0 --json \
  | python3 -c 'import json,sys; r=json.load(sys.stdin); print("score %.2f %s" % (r["score"], r["verdict"]))'
