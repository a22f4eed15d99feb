#!/usr/bin/env bash
# The modular from-scratch trainer: a tokenizer and a model from a config file, with checkpoints and resume.
source "$(dirname "$0")/lib.sh"
say "tokenizer from text"
banter-tokenize train-tokenizer testdata/tokenize/corpus.txt testdata/train/persona.jsonl --vocab-size 600 -q -o "$WORK/tok.json"
banter-tokenize encode testdata/train/persona.jsonl --tokenizer "$WORK/tok.json" --block-size 64 --keep-tail --val-split 0.1 -q -o "$WORK/train.jsonl"
say "model shape and training flags from JSON files"
cat > "$WORK/model.json" <<'JSON'
{"vocab_size": 600, "n_positions": 64, "n_embd": 64, "n_layer": 2, "n_head": 4, "resid_pdrop": 0.1, "embd_pdrop": 0.1, "attn_pdrop": 0.1}
JSON
cat > "$WORK/train.json" <<JSON
{"data": ["$WORK/train.jsonl"], "val_file": "$WORK/train.val.jsonl", "tokenizer": "$WORK/tok.json",
 "config": "$WORK/model.json", "max_steps": 20, "batch_size": 8, "lr": 2e-3, "warmup": 4, "save_every": 10,
 "output": "$WORK/model", "quiet": true}
JSON
banter-train --config-file "$WORK/train.json" --max-steps 10
say "resume to step 20 from the checkpoint"
banter-train --config-file "$WORK/train.json" --resume
test -d "$WORK/model/checkpoint-20"
python3 -c 'import json,sys; l=[json.loads(x) for x in open(sys.argv[1])]; assert l[-1]["step"]==20' "$WORK/model/metrics.jsonl"
say "the same command again resumes its own run (here: complete) instead of starting over"
banter-train --config-file "$WORK/train.json" 2> "$WORK/again.log" || { cat "$WORK/again.log"; exit 1; }
python3 -c 'import json,sys; l=[json.loads(x) for x in open(sys.argv[1])]; assert [r["step"] for r in l]==list(range(1,21)), l' "$WORK/model/metrics.jsonl"
say "oasst-style User:/Assistant: text trains as conversations"
printf 'User: Hi there\nAssistant: Hello! How can I help you today?\n\nUser: What is a tokenizer?\nAssistant: It splits text into pieces a model can read.\n\n' > "$WORK/oasst.txt"
banter-train "$WORK/oasst.txt" --model "$WORK/model" --max-steps 2 --force -o "$WORK/tuned" 2> "$WORK/tuned.log"
grep -q "read as a transcript: 2 conversation" "$WORK/tuned.log"
echo "modular-trainer: ok"
