#!/usr/bin/env bash
# Runs examples/ci/Makefile.example end to end on the demo export (tiny settings), to keep it true.
source "$(dirname "$0")/lib.sh"
cp "testdata/demo/WhatsApp Chat with Friends.txt" "$WORK/chat.txt"
sed -e 's/--epochs 3/--max-steps 5 --block-size 64/' -e 's/--config small/--config tiny/' -e 's/--block-size 128/--block-size 64/' \
    -e 's/--min-score 0.7/--min-score 0.5 --min-words 2/' examples/ci/Makefile.example > "$WORK/Makefile"
make -s -C "$WORK" model/config.json
test -f "$WORK/model/model.safetensors"
echo "ci-makefile: ok"
