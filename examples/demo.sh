#!/usr/bin/env bash
# `make demo`: the whole pipeline on shipped testdata, stage by stage, with timings; any failing stage stops
# the demo with a non-zero exit.
#   WhatsApp export → samples → validate (gate) → tokenizer + blocks → train (from scratch, then LoRA)
#   → chat one-shot replies; and the web path: crawl a local fixture site → to-samples → validate.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BANTER_BIN:-target/release}
OUT=${DEMO_OUT:-target/demo}
rm -rf "$OUT"; mkdir -p "$OUT"
STEPS=${DEMO_STEPS:-300}

stage() { printf '\n== %s\n' "$1"; STAGE_START=$(date +%s%N); }
done_stage() { local ms=$((($(date +%s%N) - STAGE_START) / 1000000)); printf -- '-- %d.%03d s\n' $((ms / 1000)) $((ms % 1000)); }

stage "runtime"
"$BIN/banter-train" --version
done_stage

stage "banter-whatsapp: parse a group export, build Sara's persona samples"
EXPORT="testdata/demo/WhatsApp Chat with Friends.txt"
"$BIN/banter-whatsapp" parse "$EXPORT" -o "$OUT/messages.jsonl"
"$BIN/banter-whatsapp" samples "$OUT/messages.jsonl" --list-authors
"$BIN/banter-whatsapp" samples "$OUT/messages.jsonl" --persona Sara --window 4 -o "$OUT/samples.jsonl"
done_stage

stage "banter-validate: the quality gate (exit 1 would stop the pipeline)"
"$BIN/banter-validate" "$OUT/samples.jsonl" --min-words 2 --filter -o "$OUT/clean.jsonl" --examples 3
done_stage

stage "banter-tokenize: a byte-level BPE tokenizer and 64-token blocks with loss on Sara's replies"
"$BIN/banter-tokenize" train-tokenizer "$OUT/clean.jsonl" --vocab-size 600 --min-frequency 2 -o "$OUT/tokenizer.json"
"$BIN/banter-tokenize" encode "$OUT/clean.jsonl" --tokenizer "$OUT/tokenizer.json" --mode pad --block-size 64 \
  --val-split 0.1 -o "$OUT/blocks.jsonl"
done_stage

stage "banter-train: a small GPT-2 from scratch ($STEPS steps)"
"$BIN/banter-train" "$OUT/blocks.jsonl" --val-file "$OUT/blocks.val.jsonl" --init scratch --config tiny \
  --tokenizer "$OUT/tokenizer.json" --max-steps "$STEPS" --batch-size 16 --lr 3e-3 --warmup 20 --dropout 0.1 \
  --eval-every 100 -o "$OUT/model"
done_stage

stage "banter-train: a LoRA adapter on top of it"
"$BIN/banter-train" "$OUT/clean.jsonl" --model "$OUT/model" --lora --max-steps 40 --batch-size 16 --lr 5e-3 \
  --warmup 5 --block-size 64 --mode pad -o "$OUT/adapter"
done_stage

stage "banter-chat: one-shot replies in Sara's style"
for q in "where are you?" "did you eat?" "coming tonight?"; do
  printf '%s → ' "$q"
  "$BIN/banter-chat" --model "$OUT/model" --adapter "$OUT/adapter" --prompt "$q" --temperature 0.7 --max-new-tokens 24 -q
done
done_stage

stage "the web path: crawl a local site → samples → validate"
PORT_FILE="$OUT/port"
python3 - "$PORT_FILE" <<'PY' &
import http.server, socketserver, sys, functools
class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a): pass
h = functools.partial(Quiet, directory="testdata/scrape/site")
with socketserver.TCPServer(("127.0.0.1", 0), h) as s:
    open(sys.argv[1], "w").write(str(s.server_address[1]))
    s.serve_forever()
PY
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 50); do [ -s "$PORT_FILE" ] && break; sleep 0.1; done
"$BIN/banter-scrape" crawl "http://127.0.0.1:$(cat "$PORT_FILE")/" --allow-private --allow-partial --delay 0 --max-pages 20 -o "$OUT/docs.jsonl"
"$BIN/banter-scrape" to-samples "$OUT/docs.jsonl" --mode pairs --seed 42 -o "$OUT/web-samples.jsonl"
"$BIN/banter-validate" "$OUT/web-samples.jsonl" --min-score 0 --examples 2
done_stage

printf '\nAll stages passed. Outputs in %s\n' "$OUT"
