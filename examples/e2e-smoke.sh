#!/usr/bin/env bash
# End-to-end smoke test run by `make e2e`: every binary starts from a directory outside the repo with
# no environment at all (no LD_LIBRARY_PATH), and the tch binaries report libtorch.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$(mktemp -d)"
for t in scrape whatsapp validate tokenize train chat; do
  env -i "$ROOT/target/release/banter-$t" --version
done
env -i "$ROOT/target/release/banter-train" --version | grep -q "libtorch 2\."
echo "e2e-smoke: ok"
