# Random models made and saved by transformers, in shapes and with tokenizers banter's own training does not
# produce: Llama with Llama 3 RoPE scaling, an untied head and attention biases; Qwen2 untied; Gemma with only a
# SentencePiece tokenizer.model (trained here with the sentencepiece package).
# argv[1]: output root; argv[2]: a byte-level tokenizer.json; argv[3]: a text corpus. Prints one JSON line.
import json
import os
import shutil
import sys

import sentencepiece as spm
import torch
from transformers import AutoModelForCausalLM, GemmaConfig, LlamaConfig, Qwen2Config

root, tok, corpus = sys.argv[1:4]
out = {}


def save(name, cfg, tokenizer=None):
    torch.manual_seed(0)
    m = AutoModelForCausalLM.from_config(cfg)
    with torch.no_grad():
        for p in m.parameters():
            p.normal_(0, 0.1)
    d = os.path.join(root, name)
    m.save_pretrained(d)
    if tokenizer:
        shutil.copy(tokenizer, os.path.join(d, "tokenizer.json"))
    out[name] = d
    return d


save("llama3-scaled", LlamaConfig(
    vocab_size=416, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
    num_key_value_heads=2, max_position_embeddings=128, tie_word_embeddings=False, attention_bias=True,
    rope_theta=500000.0, rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                       "high_freq_factor": 4.0, "original_max_position_embeddings": 32}), tok)
save("qwen2-untied", Qwen2Config(
    vocab_size=416, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
    num_key_value_heads=1, max_position_embeddings=128, tie_word_embeddings=False), tok)
text = open(corpus).read()
plain = os.path.join(root, "corpus.txt")
with open(plain, "w") as f:
    for line in text.splitlines():
        try:
            rec = json.loads(line)
            f.write(" ".join(t.get("content", "") for t in rec.get("messages", [])) + "\n")
        except Exception:
            f.write(line + "\n")
spm.SentencePieceTrainer.train(input=plain, model_prefix=os.path.join(root, "spm"), vocab_size=600,
                               model_type="bpe", byte_fallback=True, pad_id=0, bos_id=2, eos_id=1, unk_id=3,
                               minloglevel=2, hard_vocab_limit=False)
sp = spm.SentencePieceProcessor(model_file=os.path.join(root, "spm.model"))
d = save("gemma-spm", GemmaConfig(
    vocab_size=sp.get_piece_size(), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
    num_attention_heads=4, num_key_value_heads=1, head_dim=16, max_position_embeddings=128,
    pad_token_id=0, bos_token_id=2, eos_token_id=1))
shutil.copy(os.path.join(root, "spm.model"), os.path.join(d, "tokenizer.model"))
out["spm"] = os.path.join(d, "tokenizer.model")
print(json.dumps(out))
