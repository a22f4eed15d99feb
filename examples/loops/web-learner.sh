#!/usr/bin/env bash
# The self-learning chatbot's web learner as a loop of banter tools, forever (or ROUNDS times):
# fetch random Wikipedia articles → samples → keep what banter-validate keeps → append to the learning
# log → one LoRA round continuing the last adapter (banter-chat watch --once) → publish → sleep.
# A running `banter-chat serve --model BASE --adapter ADAPTER` picks up each publish by itself.
#
#   examples/loops/web-learner.sh BASE_MODEL WORK_DIR        # ENDPOINT, LANG, ARTICLES, SLEEP, ROUNDS from the env
#
# State lives in WORK_DIR (learn.jsonl and its .state.json): stop it with Ctrl-C at any moment and start it
# again; nothing learned is lost and nothing is learned twice. The one-line form of the same loop:
#   while :; do banter-scrape wikipedia --random 25 -q -o new.jsonl && banter-scrape to-samples new.jsonl -q \
#     | banter-validate - -q -o - >> learn.jsonl; banter-chat watch learn.jsonl --model BASE --threshold 1 \
#     --once -q -o adapter || break; sleep 600; done
set -uo pipefail
BASE=${1:?usage: web-learner.sh BASE_MODEL WORK_DIR}
W=${2:?usage: web-learner.sh BASE_MODEL WORK_DIR}
ARTICLES=${ARTICLES:-25} SLEEP=${SLEEP:-600} ROUNDS=${ROUNDS:-0}
wiki=(banter-scrape wikipedia --random "$ARTICLES" --lang "${LANG_EDITION:-en}" -q)
[ -n "${ENDPOINT:-}" ] && wiki+=(--endpoint "$ENDPOINT" --allow-private --delay 0)
mkdir -p "$W"
trap 'echo "web-learner: stopped (state kept in $W)"; exit 130' INT TERM
round=0
while [ "$ROUNDS" -eq 0 ] || [ "$round" -lt "$ROUNDS" ]; do
  round=$((round + 1))
  if "${wiki[@]}" -o "$W/new.jsonl"; then
    banter-scrape to-samples "$W/new.jsonl" --chunk-chars 300 --overlap 50 -q \
      | banter-validate - -q -o - >> "$W/learn.jsonl" || true
  fi
  # --publish always: every round goes out, as the seed's learner did (without it, a round whose held-out
  # loss is worse than the live adapter's is not published).
  banter-chat watch "$W/learn.jsonl" --model "$BASE" --threshold 1 --once --learn-epochs 1 --publish always -q -o "$W/adapter" || exit $?
  echo "web-learner: round $round published $W/adapter"
  [ "$ROUNDS" -ne 0 ] && [ "$round" -ge "$ROUNDS" ] && break
  sleep "$SLEEP"
done
