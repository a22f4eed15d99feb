#!/usr/bin/env bash
# Asimbot: a WhatsApp group → Sara's persona samples with retrieved context and speaker tokens → LoRA → chat.
source "$(dirname "$0")/lib.sh"
say "export → messages → samples (retrieval context, Asimbot's speaker tokens)"
banter-whatsapp samples "testdata/demo/WhatsApp Chat with Friends.txt" --persona Sara --context retrieve --top-k 12 \
  --select-k 4 --template asimbot --strip-urls -q -o "$WORK/persona.jsonl"
! grep -q "https\?://" "$WORK/persona.jsonl"
head -c 300 "$WORK/persona.jsonl"; echo
say "tokenizer with <USR_A> … <SYS>; loss only after the last <SYS>"
banter-tokenize train-tokenizer "$WORK/persona.jsonl" --template asimbot --vocab-size 500 -q -o "$WORK/tok.json"
banter-tokenize encode "$WORK/persona.jsonl" --template asimbot --tokenizer "$WORK/tok.json" --mode pad --block-size 96 -q -o "$WORK/blocks.jsonl"
say "a base model, then LoRA r8/alpha16 on it (Asimbot's settings)"
banter-train "$WORK/blocks.jsonl" --tokenizer "$WORK/tok.json" --template asimbot --config tiny --max-steps 30 -q -o "$WORK/base"
banter-train "$WORK/persona.jsonl" --model "$WORK/base" --lora --lora-r 8 --lora-alpha 16 --max-steps 15 --block-size 96 --mode pad -q -o "$WORK/sara"
say "chat as Sara"
banter-chat --model "$WORK/base" --adapter "$WORK/sara" --prompt "where are you?" --max-new-tokens 20 -q
say "take Sara elsewhere: one standalone model folder, no PEFT needed"
banter-export merge "$WORK/base" --adapter "$WORK/sara" -o "$WORK/sara-merged" -q
test -f "$WORK/sara-merged/model.safetensors" && test ! -e "$WORK/sara-merged/adapter_config.json"
banter-chat --model "$WORK/sara-merged" --prompt "where are you?" --max-new-tokens 20 -q
echo "asimbot: ok"
