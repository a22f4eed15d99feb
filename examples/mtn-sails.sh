#!/usr/bin/env bash
# MTN Sails: validate gate → train → chat with logging → retrain daemon.
source "$(dirname "$0")/lib.sh"
cp testdata/validate/mtn.json "$WORK/conversations.json"
say "validate (JSON array input; --filter writes conversations_filtered.json)"
banter-validate "$WORK/conversations.json" --filter -q
test -f "$WORK/conversations_filtered.json"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert len(d)==2' "$WORK/conversations_filtered.json"
say "the gate stops bad data: exit 1"
if banter-validate testdata/validate/bad.jsonl -q; then echo "gate should have failed" >&2; exit 1; fi
say "train on the good data (plus more pairs), chat one-shot with logging"
cat testdata/validate/good.jsonl testdata/train/persona.jsonl > "$WORK/train.jsonl"
banter-tokenize train-tokenizer "$WORK/train.jsonl" --vocab-size 500 -q -o "$WORK/tok.json"
banter-train "$WORK/train.jsonl" --tokenizer "$WORK/tok.json" --config tiny --max-steps 20 --block-size 64 -q -o "$WORK/model"
for q in "What is machine learning?" "How do I print in Rust?" "where are you?"; do
  banter-chat --model "$WORK/model" --prompt "$q" --log "$WORK/chat_log.jsonl" --repetition-penalty 1.2 --temperature 0.7 --top-p 0.9 --max-new-tokens 16 -q
done
test "$(wc -l < "$WORK/chat_log.jsonl")" -eq 3
say "the daemon retrains when the log has enough new lines"
head -n 6 testdata/train/persona.jsonl >> "$WORK/chat_log.jsonl"
banter-chat watch "$WORK/chat_log.jsonl" --model "$WORK/model" --threshold 5 --once -o "$WORK/adapter" 2> "$WORK/watch.log"
cat "$WORK/watch.log" >&2
# The round is judged on the log's held-out lines: published only when no worse than the live model.
grep -q "held-out loss" "$WORK/watch.log"
test -f "$WORK/adapter/adapter_model.safetensors" || grep -q "did not publish" "$WORK/watch.log"
say "retrain into the existing model from a User:/Assistant: transcript (read as conversations)"
printf 'User: What is machine learning?\nAssistant: Machines learning patterns from data.\n\nUser: How do I print in Rust?\nAssistant: Use the println! macro with a format string.\n\n' > "$WORK/more.txt"
before=$(sha256sum "$WORK/model/model.safetensors")
banter-train "$WORK/more.txt" --model "$WORK/model" -o "$WORK/model" --max-steps 3 --block-size 64 --force 2> "$WORK/retrain.log"
grep -q "read as a transcript: 2 conversation" "$WORK/retrain.log"
grep -q "in place" "$WORK/retrain.log"
test "$(sha256sum "$WORK/model/model.safetensors")" != "$before"
test ! -e "$WORK/.model.retrain"
echo "mtn-sails: ok"
