#!/usr/bin/env bash
# The self-learning chatbot: fetch random Wikipedia articles (here from a local MediaWiki API stand-in),
# train on them, serve POST /chat — twice round the loop.
source "$(dirname "$0")/lib.sh"
mkdir -p "$WORK/w"
python3 - "$WORK/w/api.php" <<'PY'
import json, sys
facts = ["was first described in the eighteenth century", "is taught in many schools today",
         "has a long and varied history", "attracts researchers from several countries",
         "changed how people think about nature", "remains an active field of study"]
pages = [{"pageid": i, "title": f"Topic {i}", "fullurl": f"https://en.wikipedia.org/wiki/Topic_{i}",
          "extract": " ".join(f"Topic {i} {facts[(i + j) % len(facts)]}." for j in range(6))} for i in range(5)]
json.dump({"batchcomplete": True, "query": {"pages": pages}}, open(sys.argv[1], "w"))
PY
serve_dir "$WORK"
for round in 1 2; do
  say "round $round: random articles"
  banter-scrape wikipedia --random 5 --endpoint "http://127.0.0.1:$PORT/w/api.php" --allow-private --delay 0 -q -o "$WORK/wiki.jsonl"
  banter-scrape to-samples "$WORK/wiki.jsonl" --chunk-chars 300 --overlap 50 -q -o "$WORK/samples.jsonl"
  [ -f "$WORK/tok.json" ] || banter-tokenize train-tokenizer "$WORK/samples.jsonl" --vocab-size 400 -q -o "$WORK/tok.json"
  if [ -d "$WORK/model" ]; then from=(--model "$WORK/model"); else from=(--config tiny --tokenizer "$WORK/tok.json"); fi
  banter-train "$WORK/samples.jsonl" "${from[@]}" --max-steps 10 --block-size 64 -q -o "$WORK/model.next"
  rm -rf "$WORK/model"; mv "$WORK/model.next" "$WORK/model"
done
say "serve it and ask"
banter-chat serve --model "$WORK/model" --port 0 2> "$WORK/serve.log" &
CHAT=$!
for _ in $(seq 100); do grep -q "http://" "$WORK/serve.log" 2>/dev/null && break; sleep 0.1; done
URL=$(grep -o 'http://[0-9.:]*' "$WORK/serve.log" | head -1)
curl -sf "$URL/chat" -H 'Content-Type: application/json' -d '{"message": "Tell me about Topic 3", "temperature": 0.7, "max_length": 20, "top_p": 0.9, "top_k": 50}' | python3 -c 'import json,sys; r=json.load(sys.stdin); assert "response" in r; print("reply:", r["response"])'
kill $CHAT
echo "wikipedia-loop: ok"
