#!/usr/bin/env bash
# The self-learning chatbot: a base model, then the web learner (examples/loops/web-learner.sh) fetching
# random articles from a local MediaWiki API stand-in that keeps the real API's limits, learning a LoRA
# round each time and publishing it, while `banter-chat serve` picks up every publish and answers.
source "$(dirname "$0")/lib.sh"
python3 testdata/scrape/mediawiki_mock.py "$WORK/wiki.port" &
MOCK=$!
trap 'kill $MOCK ${CHAT:-} 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 50); do [ -s "$WORK/wiki.port" ] && break; sleep 0.1; done
export ENDPOINT="http://127.0.0.1:$(cat "$WORK/wiki.port")/w/api.php" ARTICLES=6 SLEEP=0
say "a base model on 10 random articles"
banter-scrape wikipedia --random 10 --endpoint "$ENDPOINT" --allow-private --delay 0 -q -o "$WORK/base.jsonl"
test "$(wc -l < "$WORK/base.jsonl")" -eq 10
banter-scrape to-samples "$WORK/base.jsonl" --chunk-chars 300 --overlap 50 -q -o "$WORK/base-samples.jsonl"
banter-tokenize train-tokenizer "$WORK/base-samples.jsonl" --vocab-size 400 -q -o "$WORK/tok.json"
banter-train "$WORK/base-samples.jsonl" --config tiny --tokenizer "$WORK/tok.json" --max-steps 10 --block-size 64 -q -o "$WORK/base"
say "the web learner, round 1: fetch → validate → LoRA → publish"
ROUNDS=1 bash examples/loops/web-learner.sh "$WORK/base" "$WORK/learner"
test -f "$WORK/learner/adapter/adapter_config.json"
say "serve the published adapter; the learner goes on (resuming from its state) and the server follows"
banter-chat serve --model "$WORK/base" --adapter "$WORK/learner/adapter" --reload-every 0.2 --port 0 2> "$WORK/serve.log" &
CHAT=$!
for _ in $(seq 100); do grep -q "http://" "$WORK/serve.log" 2>/dev/null && break; sleep 0.1; done
URL=$(grep -o 'http://[0-9.:]*' "$WORK/serve.log" | head -1)
ROUNDS=2 bash examples/loops/web-learner.sh "$WORK/base" "$WORK/learner"
for _ in $(seq 50); do [ "$(grep -c 'newly published' "$WORK/serve.log")" -ge 2 ] && break; sleep 0.1; done
grep -c "serving the newly published adapter" "$WORK/serve.log" | grep -qx 2 || { cat "$WORK/serve.log"; exit 1; }
lines=$(wc -l < "$WORK/learner/learn.jsonl")
python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); assert s["lines_consumed"] == int(sys.argv[2]), s' \
  "$WORK/learner/learn.jsonl.state.json" "$lines"
curl -sf "$URL/chat" -H 'Content-Type: application/json' -d '{"message": "Tell me about Topic 3", "max_length": 20}' \
  | python3 -c 'import json,sys; r=json.load(sys.stdin); assert "response" in r; print("reply:", r["response"])'
echo "wikipedia-loop: ok (3 rounds learned from $lines samples, 2 publishes picked up by the server)"
