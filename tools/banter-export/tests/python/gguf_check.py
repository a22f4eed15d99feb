# Reads banter's GGUF files back with the `gguf` package (llama.cpp's gguf-py) and checks them against the
# Hugging Face model they came from, as llama.cpp's convert_hf_to_gguf.py would write it: tensor names from
# gguf-py's own TensorNameMap for the architecture, shapes, types, values (with the converter's q/k
# permutation for `llama`, Gemma's `w + 1` norms, GPT-2's transposed Conv1D), and the metadata keys.
# argv[1]: JSON list of jobs {gguf, model, arch, type}. Prints one JSON line.
import json
import sys

import gguf
import numpy as np
from safetensors.numpy import load_file

K = gguf.Keys


def permute(w, n_head):
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def check(job):
    r = gguf.GGUFReader(job["gguf"])
    arch = job["arch"]
    cfg = json.load(open(f"{job['model']}/config.json"))
    f = {k: v for k, v in r.fields.items()}
    val = lambda k: f[k].contents()
    assert val(K.General.ARCHITECTURE) == arch, val(K.General.ARCHITECTURE)
    n_blocks = cfg.get("num_hidden_layers", cfg.get("n_layer"))
    keys = [K.LLM.CONTEXT_LENGTH, K.LLM.EMBEDDING_LENGTH, K.LLM.BLOCK_COUNT, K.LLM.FEED_FORWARD_LENGTH,
            K.Attention.HEAD_COUNT]
    keys += [K.Attention.LAYERNORM_EPS] if arch == "gpt2" else [K.Attention.HEAD_COUNT_KV, K.Attention.LAYERNORM_RMS_EPS, K.Rope.FREQ_BASE]
    if arch == "gemma2":
        keys += [K.LLM.ATTN_LOGIT_SOFTCAPPING, K.LLM.FINAL_LOGIT_SOFTCAPPING, K.Attention.SLIDING_WINDOW]
    for k in keys:
        assert k.format(arch=arch) in f, f"missing {k.format(arch=arch)}"
    assert val(K.LLM.BLOCK_COUNT.format(arch=arch)) == n_blocks
    need = [K.Tokenizer.MODEL, K.Tokenizer.LIST, K.Tokenizer.TOKEN_TYPE]
    need += [K.Tokenizer.CHAT_TEMPLATE] if job.get("template", True) else []
    need += [K.Tokenizer.EOS_ID] if cfg.get("eos_token_id") is not None else []
    for k in need:
        assert k in f, f"{job['gguf']}: missing {k}"
    if cfg.get("eos_token_id") is not None:
        assert val(K.Tokenizer.EOS_ID) == cfg["eos_token_id"], (val(K.Tokenizer.EOS_ID), cfg["eos_token_id"])
    if val(K.Tokenizer.MODEL) == "gpt2":
        assert K.Tokenizer.MERGES in f and K.Tokenizer.PRE in f
    assert len(f[K.Tokenizer.LIST].data) == len(f[K.Tokenizer.TOKEN_TYPE].data)
    if job.get("spm"):
        # SentencePiece: the pieces, scores and types of tokenizer.model, in id order.
        import sentencepiece as spm
        sp = spm.SentencePieceProcessor(model_file=job["spm"])
        toks = [bytes(f[K.Tokenizer.LIST].parts[i]).decode() for i in f[K.Tokenizer.LIST].data]
        assert val(K.Tokenizer.MODEL) == "llama"
        assert toks[: sp.get_piece_size()] == [sp.id_to_piece(i) for i in range(sp.get_piece_size())]
        scores = [float(f[K.Tokenizer.SCORES].parts[i][0]) for i in f[K.Tokenizer.SCORES].data]
        assert all(abs(scores[i] - sp.get_score(i)) < 1e-6 for i in range(sp.get_piece_size()))
        types = [int(f[K.Tokenizer.TOKEN_TYPE].parts[i][0]) for i in f[K.Tokenizer.TOKEN_TYPE].data]
        for i in range(sp.get_piece_size()):
            want = 2 if sp.is_unknown(i) else 3 if sp.is_control(i) else 6 if sp.is_byte(i) else 5 if sp.is_unused(i) else None
            assert want is None or types[i] == want, (i, sp.id_to_piece(i), types[i], want)

    arch_id = next(a for a, n in gguf.MODEL_ARCH_NAMES.items() if n == arch)
    names = gguf.get_tensor_name_map(arch_id, n_blocks)
    expected = {}
    for name, w in load_file(f"{job['model']}/model.safetensors").items():
        new = names.get_name(name, try_suffixes=(".weight", ".bias"))
        assert new is not None, f"gguf-py has no name for {name}"
        w = w.astype(np.float32)
        if arch == "gpt2" and name.endswith(("c_attn.weight", "c_proj.weight", "c_fc.weight")):
            w = w.T
        if arch == "llama" and new.endswith(("attn_q.weight", "attn_q.bias")):
            w = permute(w, cfg["num_attention_heads"])
        if arch == "llama" and new.endswith(("attn_k.weight", "attn_k.bias")):
            w = permute(w, cfg.get("num_key_value_heads") or cfg["num_attention_heads"])
        if arch.startswith("gemma") and new.endswith("norm.weight"):
            w = w + 1
        expected[new] = w
        if arch == "gpt2" and new == "token_embd.weight":
            expected["output.weight"] = w
    # transformers 5 writes `rope_parameters` (theta and scaling in one), older versions `rope_scaling`.
    rs = cfg.get("rope_scaling") or cfg.get("rope_parameters") or {}
    if arch == "llama" and (rs.get("rope_type") or rs.get("type")) == "llama3":
        # convert_hf_to_gguf.py's rope_freqs for Llama 3 scaling.
        import math
        dim = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
        theta = cfg.get("rope_theta") or rs.get("rope_theta", 10000.0)
        freqs = 1.0 / (theta ** (np.arange(0, dim, 2, dtype=np.float32) / dim))
        factor, lo, hi = rs.get("factor", 8.0), rs.get("low_freq_factor", 1.0), rs.get("high_freq_factor", 4.0)
        old = rs.get("original_max_position_embeddings", 8192)
        fs = []
        for fr in freqs:
            wl = 2 * math.pi / fr
            if wl < old / hi:
                fs.append(1.0)
            elif wl > old / lo:
                fs.append(factor)
            else:
                sm = (old / wl - lo) / (hi - lo)
                fs.append(1 / ((1 - sm) / factor + sm))
        expected["rope_freqs.weight"] = np.array(fs, np.float32)
    got = {t.name: t for t in r.tensors}
    assert set(got) == set(expected), (sorted(set(got) ^ set(expected)))
    types = {}
    for n, t in got.items():
        w = expected[n]
        assert [int(d) for d in reversed(t.shape)] == list(w.shape), (n, t.shape, w.shape)
        ty = t.tensor_type.name
        types[ty] = types.get(ty, 0) + 1
        matrix = w.ndim == 2 and n != "position_embd.weight"
        blocks = w.shape[-1] % 32 == 0
        eight_bits = n.startswith("token_embd") or n.startswith("output.")
        want = {"f32": "F32", "f16": "F16" if matrix else "F32", "bf16": "BF16" if matrix else "F32",
                "q8_0": ("Q8_0" if blocks else "F16") if matrix else "F32",
                "q4_0": (("Q8_0" if eight_bits else "Q4_0") if blocks else "F16") if matrix else "F32"}[job["type"]]
        assert ty == want, (n, ty, want)
        if ty in ("Q4_0", "Q8_0", "BF16"):
            # Byte for byte what gguf-py (llama.cpp's reference rounding) writes.
            mine = np.asarray(t.data).reshape(-1)
            theirs = gguf.quants.quantize(w.astype(np.float32), t.tensor_type).reshape(-1)
            assert np.array_equal(mine.view(np.uint8), theirs.view(np.uint8)), (n, ty, "bytes differ from gguf-py")
        x = gguf.quants.dequantize(t.data, t.tensor_type).reshape(w.shape)
        amax = float(np.abs(w).max())
        tol = {"F32": 1e-6 * max(1.0, amax), "F16": 1e-3 * amax, "BF16": amax / 128,
               "Q8_0": amax / 127 * 0.51 + 1e-3 * amax, "Q4_0": amax / 8 * 1.01 + 1e-3 * amax}[ty]  # Q4_0 clamps the far side at 7·d
        err = float(np.abs(x - w).max())
        assert err <= tol + 1e-7, (n, ty, err, tol)
    return {"gguf": job["gguf"], "tensors": len(got), "types": types, "keys": len(f)}


print(json.dumps([check(j) for j in json.loads(sys.argv[1])]))
