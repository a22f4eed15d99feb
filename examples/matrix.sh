#!/usr/bin/env bash
# The combination matrix (family × template × training mode → chat, batch, serve, transformers/PEFT, ONNX,
# GGUF), pairwise: every pair of values in 40 cells. `make test-matrix` runs all 160 (examples/matrix.py).
source "$(dirname "$0")/lib.sh"
"${BANTER_PYTHON:-python3}" examples/matrix.py --keep "$WORK/matrix"
