"""Trains small SentencePiece models (unigram and BPE; byte fallback; nmt_nfkc and identity normalization;
with and without the dummy prefix; a user-defined symbol) and prints the ids SentencePiece's own encoder
gives for a set of texts. banter's tokenizer.model reader must give the same.

Usage: spm_reference.py TRAIN_TEXT_FILE OUT_DIR. Prints {"texts": [...], "models": {name: [[ids]...]}}."""
import json
import sys

import sentencepiece as spm

corpus, out = sys.argv[1], sys.argv[2]
configs = {
    "unigram": dict(model_type="unigram", vocab_size=300),
    "unigram-identity-noprefix": dict(
        model_type="unigram", vocab_size=300, normalization_rule_name="identity", add_dummy_prefix=False
    ),
    "bpe-bytes": dict(model_type="bpe", vocab_size=400, byte_fallback=True, user_defined_symbols=["<user>"]),
    "bpe": dict(model_type="bpe", vocab_size=300, remove_extra_whitespaces=False),
}
texts = [
    "where are you?",
    "  Hello   World  ",
    "I'd like 3 cups of green tea, please!",
    "naïve café — ﬁne Ｔｅａ",
    "多くの 人 が",
    "emoji 🙂 and <user> tags",
    "tabs\tand\nnewlines",
    "",
    "x",
    "supercalifragilisticexpialidocious",
    " leading space",
    "glued<user>tags and <user>",
    "ÅNGSTRÖM ① ＡＢＣ ½",
]
result = {"texts": texts, "models": {}}
for name, cfg in configs.items():
    spm.SentencePieceTrainer.train(
        input=corpus,
        model_prefix=f"{out}/{name}",
        character_coverage=0.9995,
        pad_id=0,
        bos_id=1,
        eos_id=2,
        unk_id=3,
        minloglevel=2,
        hard_vocab_limit=False,
        **cfg,
    )
    sp = spm.SentencePieceProcessor(model_file=f"{out}/{name}.model")
    result["models"][name] = [sp.encode(t) for t in texts]
print(json.dumps(result))
