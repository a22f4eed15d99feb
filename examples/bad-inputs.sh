#!/usr/bin/env bash
# The bad-input corpus (testdata/bad) through the real binaries: every case must exit with its documented
# code and name the problem, never panic, leave every input and older output byte-identical, and leave no
# temp file behind.
source "$(dirname "$0")/lib.sh"

IN="$WORK/in"
cp -r testdata/bad "$IN"
ROOT=$PWD
cd "$IN"
echo keep > old-output.jsonl
# A zip bomb: 64 MiB of one line, packed to well under 1 MiB.
python3 - <<'PY'
import zipfile
line = b"15/01/2023, 21:08 - Ann: hi\n"
with zipfile.ZipFile("bomb.zip", "w", zipfile.ZIP_DEFLATED) as z:
    z.writestr("_chat.txt", line * ((64 << 20) // len(line)))
PY
banter-tokenize train-tokenizer --vocab-size 300 --min-frequency 1 -q -o "$WORK/tok.json" corpus.jsonl
TOK="$WORK/tok.json"
# Round 2 (issue 26): a zip whose headers claim 4 GB compressed (the declared ratio looks harmless); hostile
# torch.save checkpoints in tiny model folders; a token file whose header overflows; chat templates that
# never end or grow text or a list by doubling.
python3 "$ROOT/examples/hostile_inputs.py" "$TOK"

snapshot() { find "$IN" -type f -print0 | sort -z | xargs -0 sha256sum; }
fails=0
n=0
# check NAME CODE "stderr text" -- command…
check() {
  local name=$1 want=$2 text=$3
  shift 4
  n=$((n + 1))
  local before after code err
  before=$(snapshot)
  set +e
  err=$("$@" 2>&1 >/dev/null </dev/null)
  code=$?
  set -e
  after=$(snapshot)
  local why=""
  [ "$code" = "$want" ] || why="exit $code, want $want"
  case "$err" in *"$text"*) ;; *) why="$why; stderr lacks \"$text\"" ;; esac
  case "$err" in *panicked*|*RUST_BACKTRACE*) why="$why; panicked" ;; esac
  [ "$before" = "$after" ] || why="$why; an input or old output changed"
  if find "$IN" "$WORK" -maxdepth 2 -name '*.tmp' | grep -q .; then why="$why; temp file left"; fi
  if [ -n "$why" ]; then
    echo "FAIL $name: ${why#; }"
    echo "  stderr: $err" | head -5
    fails=$((fails + 1))
  else
    echo "ok   $name (exit $code)"
  fi
}

say "banter-validate"
check "invalid JSON names its line" 3 "bad.jsonl:2" -- banter-validate bad.jsonl
check "an empty file is no input" 4 "no input" -- banter-validate empty.jsonl
check "closed stdin is no input" 4 "no input" -- banter-validate -
check "a number out of range" 3 "out of range" -- banter-validate huge-number.jsonl
check "invalid UTF-8" 3 "UTF-8" -- banter-validate bad-utf8.jsonl
check "output onto the input" 2 "also an input" -- banter-validate corpus.jsonl --filter -o corpus.jsonl

say "banter-whatsapp"
check "an empty export" 4 "no input" -- banter-whatsapp parse empty.jsonl
check "not a chat export" 3 "no WhatsApp message headers" -- banter-whatsapp parse not-a-chat.txt
check "a zip bomb" 3 "zip bomb" -- banter-whatsapp parse bomb.zip
check "a broken zip" 3 "zip" -- banter-whatsapp parse broken.zip
check "a zip bomb whose headers lie" 3 "zip bomb" -- banter-whatsapp parse liar.zip
check "output onto the input" 2 "also an input" -- banter-whatsapp parse chat.txt -o chat.txt

say "banter-tokenize"
check "a mistyped field" 3 "field \"messages\"" -- banter-tokenize encode --tokenizer "$TOK" bad.jsonl
check "every bad line reported" 3 "3 bad records" -- banter-tokenize train-tokenizer --vocab-size 300 -o "$WORK/t2.json" three-bad.jsonl
check "a missing tokenizer" 4 "nope.json" -- banter-tokenize encode --tokenizer "$WORK/nope.json" corpus.jsonl
check "output onto the input" 2 "also an input" -- banter-tokenize encode --tokenizer "$TOK" corpus.jsonl -o corpus.jsonl
check "a number out of range" 3 "out of range" -- banter-tokenize train-tokenizer --vocab-size 300 -o "$WORK/t3.json" huge-number.jsonl

say "banter-scrape"
check "a doc without text" 3 "field \"text\"" -- banter-scrape to-samples doc-no-text.jsonl
check "IPv4-mapped loopback" 4 "non-public address" -- banter-scrape fetch "http://[::ffff:127.0.0.1]:9/"
check "a failed fetch keeps -o" 4 "no page could be fetched" -- banter-scrape fetch --allow-private --timeout 2 --retries 0 "http://127.0.0.1:9/" -o old-output.jsonl

say "banter-train"
check "a label outside the vocabulary" 3 "label 9000" -- banter-train --config tiny --max-steps 1 --tokenizer "$TOK" -o "$WORK/m1" label-out-of-vocab.jsonl
check "nothing to learn" 3 "nothing to learn" -- banter-train --config tiny --max-steps 1 --tokenizer "$TOK" -o "$WORK/m2" all-ignored.jsonl
check "a block longer than the model" 3 "too-long.jsonl:1" -- banter-train --config tiny --max-steps 1 --tokenizer "$TOK" -o "$WORK/m3" too-long.jsonl
check "every bad sample reported" 3 "3 bad records" -- banter-train --config tiny --max-steps 1 --tokenizer "$TOK" -o "$WORK/m4" three-bad.jsonl
check "a token file header that overflows" 3 "header.blocks" -- banter-train --config tiny --max-steps 1 --tokenizer "$TOK" -o "$WORK/m5" overflow.bin
for c in memo-bomb deep-tuple marks stride-zero negative-stride; do
  check "a hostile checkpoint: $c" 3 "pytorch_model.bin" -- banter-train --model "$c" --max-steps 1 -o "$WORK/m-$c" corpus.jsonl
done
# Retraining in place is allowed (through .NAME.retrain); a hostile checkpoint still fails to load, and
# leaves neither a change nor a staging folder behind. An adapter over its own base is refused.
check "retraining a hostile model in place" 3 "pytorch_model.bin" -- banter-train --model memo-bomb --max-steps 1 -o memo-bomb corpus.jsonl
test ! -e .memo-bomb.retrain
check "an adapter written over its own base" 2 "cannot replace the model it adapts" -- banter-train --model memo-bomb --lora --max-steps 1 -o memo-bomb corpus.jsonl

say "banter-chat"
check "an empty API key" 2 "--api-key is empty" -- banter-chat serve --model "$WORK/no-model" --api-key ""
check "a missing model" 4 "no-model" -- banter-chat --model "$WORK/no-model" --prompt hello
check "a hostile checkpoint" 3 "memo" -- banter-chat --model memo-bomb --prompt hello
check "a template that never ends" 2 "work limit" -- banter-chat --model tmpl-loop --prompt hello
check "a template that doubles text" 2 "work limit" -- banter-chat --model tmpl-doubling --prompt hello
check "a template that doubles a list" 2 "work limit" -- banter-chat --model tmpl-list --prompt hello

say "banter-export"
check "an export onto its input" 2 "an input" -- banter-export onnx memo-bomb -o memo-bomb
check "an export into its input" 2 "an input" -- banter-export gguf memo-bomb -o memo-bomb/model.gguf
check "an export holding its input" 2 "an input" -- banter-export onnx memo-bomb -o .

echo
if [ "$fails" -gt 0 ]; then
  echo "bad-inputs: $fails of $n cases failed"
  exit 1
fi
echo "bad-inputs: all $n cases refused cleanly (no panic, nothing changed, no temp left)"
