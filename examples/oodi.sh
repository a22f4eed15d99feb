#!/usr/bin/env bash
# Oodi: scrape a forum into a persona seed, train, chat, and fine-tune every N exchanges while chatting.
source "$(dirname "$0")/lib.sh"
serve_dir testdata/scrape/site
say "scrape the (local) forum and pages into docs"
banter-scrape crawl "http://127.0.0.1:$PORT/" --allow-private --allow-partial --delay 0 --max-pages 10 -q -o "$WORK/docs.jsonl"
say "docs → seed samples with Oodi's persona header"
banter-scrape to-samples "$WORK/docs.jsonl" --chunk-chars 400 --overlap 50 --system "You are Oodi, a friendly tea expert." -q -o "$WORK/seed.jsonl"
say "tokenizer + a small model"
banter-tokenize train-tokenizer "$WORK/seed.jsonl" --vocab-size 500 -q -o "$WORK/tok.json"
banter-train "$WORK/seed.jsonl" --tokenizer "$WORK/tok.json" --config tiny --max-steps 30 --block-size 128 --force -q -o "$WORK/model"
say "chat, logging every exchange; learn every 2 exchanges (Oodi: 20)"
printf 'what is green tea?\n/pushh me/oodi\nhow hot should the water be?\n/exit\n' \
  | banter-chat --model "$WORK/model" --system "You are Oodi, a friendly tea expert." --log "$WORK/buffer.jsonl" \
      --learn-every 2 --seed-data "$WORK/seed.jsonl" --max-new-tokens 20 -q
test "$(wc -l < "$WORK/buffer.jsonl")" -eq 2   # the mistyped /pushh reached neither the model nor the log
test -f "$WORK/buffer.jsonl.adapter/adapter_config.json"
echo "oodi: ok (2 exchanges logged, adapter learned)"
