#!/usr/bin/env bash
# The persona walk-through (docs/eval.md): export → messages → a held-out split → samples → a small base model
# → a LoRA adapter that never sees the held-out part → `banter-eval persona` → the report, and the gate.
source "$(dirname "$0")/lib.sh"
EXPORT="testdata/eval/WhatsApp Chat with Three Friends.txt"
STEPS=${PERSONA_STEPS:-150}

say "the chat's messages, and its last 20% (by time) held out"
banter-whatsapp parse "$EXPORT" -q -o "$WORK/messages.jsonl"
banter-eval split "$WORK/messages.jsonl" --holdout 0.2 -o "$WORK/split.json"
cat "$WORK/split.json"

say "Sara's persona samples (every reply of hers, with the turns before it)"
banter-whatsapp samples "$WORK/messages.jsonl" --persona Sara --window 4 -q -o "$WORK/sara.jsonl"
# A base model to adapt: a tiny GPT-2 trained on everyone's lines of the training part (the messages before
# the split), standing in for a pretrained model.
python3 - "$WORK/messages.jsonl" "$WORK/split.json" > "$WORK/everyone.txt" <<'PY'
import json, sys
cut = json.load(open(sys.argv[2]))["cutoff"]
for line in open(sys.argv[1]):
    m = json.loads(line)
    if m.get("author") and m["kind"] == "text" and m["ts"] < cut:
        print(m["text"])
PY
banter-tokenize train-tokenizer "$WORK/everyone.txt" "$WORK/sara.jsonl" --vocab-size 800 -q -o "$WORK/tok.json"
banter-train "$WORK/everyone.txt" --tokenizer "$WORK/tok.json" --init scratch --config tiny --template chatml \
  --max-steps "$STEPS" --batch-size 16 --lr 3e-3 --warmup 10 --block-size 64 --force -q -o "$WORK/base"

say "a LoRA adapter on Sara's replies; --holdout-split leaves out the replies in the held-out part"
banter-train "$WORK/sara.jsonl" --model "$WORK/base" --lora --holdout-split "$WORK/split.json" --max-steps "$STEPS" \
  --batch-size 16 --lr 5e-3 --warmup 10 --block-size 64 --mode pad --force -o "$WORK/sara-lora"
ls "$WORK/sara-lora/eval_split.json"

say "does it talk like Sara? the adapter beside the base, on contexts training never saw"
banter-eval persona "$WORK/base" --adapter "$WORK/sara-lora" --messages "$WORK/messages.jsonl" --persona Sara \
  --samples 24 --html "$WORK/report.html" --json > "$WORK/report.json"
python3 - "$WORK/report.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["persona"]
for m in r["models"]:
    f = m["figures"]
    print(f'{m["name"]}: attributed to Sara {f["attribution"]:.0%}, style distance {f["style_distance"]:.3f}, '
          f'held-out loss {m["heldout_loss"]:.3f}')
ex = r["examples"][0]
print("context:", " | ".join(ex["context"]))
print("real:", ex["real"], "| adapter:", ex["generated"][0], "| base:", ex["generated"][1])
PY
ls -l "$WORK/report.html"

say "the gate: a make or CI step that stops a model that does not sound like her"
banter-eval persona "$WORK/base" --adapter "$WORK/sara-lora" --messages "$WORK/messages.jsonl" --persona Sara \
  --samples 24 --no-base --min-attribution 0.5 -q && echo "gate passed"
rc=0; banter-eval persona "$WORK/base" --messages "$WORK/messages.jsonl" --split "$WORK/split.json" --persona Sara \
  --samples 24 --min-attribution 0.9 -q || rc=$?
echo "the base model alone at --min-attribution 0.9: exit $rc"; test "$rc" = 1

say "held-out loss of the base and the adapter on the held-out samples"
python3 - "$WORK/sara.jsonl" "$WORK/split.json" > "$WORK/held.jsonl" <<'PY'
import json, sys
cut = json.load(open(sys.argv[2]))["cutoff"]
for line in open(sys.argv[1]):
    if json.loads(line)["meta"]["ts"] >= cut:
        print(line, end="")
PY
banter-eval loss "$WORK/base" "$WORK/held.jsonl" --adapter "$WORK/sara-lora" --better-than "$WORK/base"
