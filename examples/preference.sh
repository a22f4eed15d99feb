#!/usr/bin/env bash
# Preference tuning (Asimbot's stretch goal), as docs/train.md walks through it: three replies per prompt from
# the current model → ranked by a judge → validated → DPO on a LoRA adapter → chat with it.
source "$(dirname "$0")/lib.sh"
say "Sara's persona samples and a small model to start from"
banter-whatsapp samples "testdata/demo/WhatsApp Chat with Friends.txt" --persona Sara -q -o "$WORK/samples.jsonl"
banter-tokenize train-tokenizer "$WORK/samples.jsonl" --vocab-size 500 -q -o "$WORK/tok.json"
banter-train "$WORK/samples.jsonl" --tokenizer "$WORK/tok.json" --config tiny --max-steps 30 --force -q -o "$WORK/sara"
say "three sampled replies per prompt, one row each"
for q in "where are you?" "coming tonight?" "did you eat?" "how was work?" "movie this weekend?" "can you call me later?"; do
  printf '{"messages": [{"role": "user", "content": "%s"}]}\n' "$q"
done > "$WORK/prompts.jsonl"
banter-chat --model "$WORK/sara" --input "$WORK/prompts.jsonl" --num-return-sequences 3 --temperature 0.9 \
  --max-new-tokens 16 -q -o "$WORK/replies.jsonl"
head -n 1 "$WORK/replies.jsonl"
say "rank them: any judge that writes JSONL will do; this one prefers replies with more distinct words"
python3 - "$WORK/replies.jsonl" > "$WORK/ranked.jsonl" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    row = json.loads(line)
    score = [len(set(r.split())) + i * 1e-3 for i, r in enumerate(row["responses"])]
    row["ranked_indices"] = sorted(range(len(score)), key=lambda i: -score[i])
    print(json.dumps(row, ensure_ascii=False))
PY
say "check the rankings and the replies: a bad ranking would be exit 3, naming its field; a 30-step toy model's
replies fail the quality checks (exit 1), so the training below takes --force"
rc=0; banter-validate "$WORK/ranked.jsonl" --json > "$WORK/validate.json" || rc=$?
test "$rc" -le 1
python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print("rankings well-formed:", r["counts"]["malformed"] == 0, "verdict", r["verdict"])' "$WORK/validate.json"
say "DPO on a LoRA adapter, then chat with it"
banter-train "$WORK/ranked.jsonl" --dpo --model "$WORK/sara" --lora --max-steps 8 --batch-size 4 --force --json -q \
  -o "$WORK/sara-dpo" > "$WORK/report.json"
python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print("steps", r["steps"], "final DPO loss", round(r["final_loss"], 4))' "$WORK/report.json"
test -f "$WORK/sara-dpo/adapter_config.json"
banter-chat --model "$WORK/sara" --adapter "$WORK/sara-dpo" --prompt "where are you?" --max-new-tokens 20 -q
echo "preference: ok"
