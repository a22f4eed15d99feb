#!/usr/bin/env bash
# Hostile inputs (issue 26), timed: exit code, seconds and peak RSS of each refusal, and the server under long
# conversations with the model's own and a Mistral-style Jinja template. Usage: hostile.sh BIN_DIR
set -euo pipefail
BIN=$(cd "$1" && pwd)
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
W=$(mktemp -d "${TMPDIR:-/tmp}/banter-hostile.XXXXXX")
trap 'rm -rf "$W"' EXIT
cd "$W"
"$BIN/banter-tokenize" train-tokenizer --vocab-size 400 --min-frequency 1 -q -o tok.json "$ROOT/testdata/train/persona.jsonl"
"$BIN/banter-train" --config tiny --max-steps 20 --batch-size 8 --block-size 32 -q --tokenizer tok.json -o model \
  "$ROOT/testdata/train/persona.jsonl"
python3 "$ROOT/examples/hostile_inputs.py" tok.json
echo "| input | exit | seconds | peak RSS |"
echo "|---|---:|---:|---:|"
m() {
  local name=$1; shift
  local s e code
  s=$(date +%s.%N)
  set +e
  /usr/bin/time -f "%M" -o mem.txt "$@" >/dev/null 2>err.txt
  code=$?
  set -e
  e=$(date +%s.%N)
  printf "| %s | %s | %.2f | %d MB |\n" "$name" "$code" "$(echo "$e - $s" | bc)" $(( $(tail -1 mem.txt) / 1024 ))
}
m "(baseline: banter-chat, no model)" "$BIN/banter-chat" --model "$W/none" --prompt hi
m "zip, headers claim 4 GB compressed" "$BIN/banter-whatsapp" parse liar.zip -q
for c in memo-bomb deep-tuple marks stride-zero negative-stride; do m "checkpoint: $c" "$BIN/banter-chat" --model "$c" --prompt hi; done
m "token header: 2^61 blocks" "$BIN/banter-train" --config tiny --max-steps 1 --tokenizer tok.json -o m5 overflow.bin
for t in tmpl-loop tmpl-doubling tmpl-list; do m "template: $t" "$BIN/banter-chat" --model "$t" --prompt hi; done
echo
echo "Server, the model's own template:"
python3 "$ROOT/tools/banter-chat/bench/turns.py" "$BIN" model
mkdir jinja
cp model/config.json model/model.safetensors model/tokenizer.json jinja/
python3 - <<'PY'
import json
t = ("{% for m in messages %}{% if (m['role'] == 'user') != (loop.index0 % 2 == 0) %}"
     "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
     "{{ '<|user|>' if m['role'] == 'user' else '<|assistant|>' }}\n{{ m['content'] | trim }}<|end|>\n{% endfor %}"
     "{% if add_generation_prompt %}<|assistant|>\n{% endif %}")
json.dump({"chat_template": t}, open("jinja/tokenizer_config.json", "w"))
PY
echo "Server, a Mistral-style Jinja template (roles must alternate):"
python3 "$ROOT/tools/banter-chat/bench/turns.py" "$BIN" jinja
