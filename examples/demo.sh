#!/usr/bin/env bash
# `make demo`: runs what exists of the pipeline on the shipped testdata, stage by stage, with timings.
# Stages whose tool is not built yet are listed as such (the demo never pretends).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=target/release
OUT=${DEMO_OUT:-target/demo}
mkdir -p "$OUT"

stage() { printf '\n== %s\n' "$1"; STAGE_START=$(date +%s%N); }
done_stage() { local ms=$((($(date +%s%N) - STAGE_START) / 1000000)); printf -- '-- %d.%03d s\n' $((ms / 1000)) $((ms % 1000)); }

stage "runtime"
"$BIN/banter-train" --version
"$BIN/banter-chat" --version
done_stage

stage "tools"
for t in scrape whatsapp validate tokenize train chat; do
  if "$BIN/banter-$t" --help | grep -q "NOT BUILT YET"; then
    printf '  %-17s not built yet\n' "banter-$t"
  else
    printf '  %-17s ready\n' "banter-$t"
  fi
done
done_stage

echo
echo "The full pipeline (WhatsApp export → samples → validate → tokenize → train → chat) runs here as its"
echo "tools land; see README.md for what is built."
