"""A word-level tokenizer.json of V ids (`t0` … `t{V-2}`, `<|endoftext|>` last) for the speed benches, whose
figures do not depend on the text (distributed.py, checkpointing.py)."""
import json


def write_tokenizer(path, V):
    vocab = {f"t{i}": i for i in range(V - 1)}
    vocab["<|endoftext|>"] = V - 1
    json.dump({"version": "1.0", "truncation": None, "padding": None, "normalizer": None, "post_processor": None,
               "decoder": None, "pre_tokenizer": {"type": "WhitespaceSplit"},
               "added_tokens": [{"id": V - 1, "content": "<|endoftext|>", "single_word": False, "lstrip": False,
                                 "rstrip": False, "normalized": False, "special": True}],
               "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "t0"}}, open(path, "w"))
