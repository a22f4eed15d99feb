#!/usr/bin/env bash
# Runs the README's whirlwind tour exactly as written (the block between <!-- tour --> markers), in a
# scratch directory that sees the repository's testdata and binaries.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
awk '/<!-- tour -->/{on=1; next} /<!-- \/tour -->/{on=0} on && !/^```/' "$ROOT/README.md" > "$WORK/tour.sh"
test -s "$WORK/tour.sh"
ln -s "$ROOT/testdata" "$WORK/testdata"
mkdir -p "$WORK/target"; ln -s "$ROOT/target/release" "$WORK/target/release"
cd "$WORK"
bash -euo pipefail tour.sh
test -f sara/model.safetensors
echo "readme-tour: ok"
