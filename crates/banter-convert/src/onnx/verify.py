# Runs an exported graph in onnxruntime for `banter-export onnx --verify` (embedded in the binary).
# Reads a request JSON (argv[1]); writes each prompt's full-pass logits as raw float32 and a result JSON.
import json
import sys

import numpy as np
import onnxruntime as ort

req = json.load(open(sys.argv[1]))
opts = ort.SessionOptions()
opts.intra_op_num_threads = req.get("threads", 0)
sess = ort.InferenceSession(req["model"], opts, providers=["CPUExecutionProvider"])
names = {i.name for i in sess.get_inputs()}
L, KV, HD = req["layers"], req["kv_heads"], req["head_dim"]


def run(ids, mask, past=None, pos=None):
    b = ids.shape[0]
    feed = {"input_ids": ids, "attention_mask": mask}
    if "position_ids" in names:
        if pos is None:
            pos = np.cumsum(mask, axis=1) - 1
            pos = np.clip(pos, 0, None)[:, -ids.shape[1]:]
        feed["position_ids"] = pos.astype(np.int64)
    for i in range(L):
        for k in ("key", "value"):
            feed[f"past_key_values.{i}.{k}"] = (
                past[f"present.{i}.{k}"] if past is not None else np.zeros((b, KV, 0, HD), np.float32)
            )
    outs = sess.run(None, feed)
    return outs[0], dict(zip([o.name for o in sess.get_outputs()], outs))


out = {"cached_max_abs_diff": 0.0, "batch_max_abs_diff": 0.0}
prompts = [np.array([p], dtype=np.int64) for p in req["prompts"]]
full = []
for n, ids in enumerate(prompts):
    logits, _ = run(ids, np.ones_like(ids))
    full.append(logits)
    logits.astype(np.float32).tofile(f"{req['out']}/logits{n}.f32")
    # The same tokens in two calls, the second over the first's cache.
    t = ids.shape[1]
    if t >= 2:
        h = t // 2
        _, p1 = run(ids[:, :h], np.ones((1, h), np.int64))
        l2, _ = run(ids[:, h:], np.ones((1, t), np.int64), past=p1)
        out["cached_max_abs_diff"] = max(out["cached_max_abs_diff"], float(np.abs(l2 - logits[:, h:]).max()))

# Two prompts of different lengths in one left-padded batch.
if len(prompts) >= 2:
    a, b = prompts[0][0], prompts[1][0]
    t = max(len(a), len(b))
    ids = np.zeros((2, t), np.int64)
    mask = np.zeros((2, t), np.int64)
    for r, p in enumerate((a, b)):
        ids[r, t - len(p):] = p
        mask[r, t - len(p):] = 1
    lb, _ = run(ids, mask)
    for r, p in enumerate((a, b)):
        d = np.abs(lb[r, t - len(p):] - full[r][0]).max()
        out["batch_max_abs_diff"] = max(out["batch_max_abs_diff"], float(d))

# Greedy decoding with the KV cache: the prompt, then one token per call.
ids = prompts[0]
logits, cache = run(ids, np.ones_like(ids))
tokens = []
s = ids.shape[1]
for _ in range(req["steps"]):
    nxt = int(np.argmax(logits[0, -1]))
    tokens.append(nxt)
    s += 1
    logits, cache = run(
        np.array([[nxt]], np.int64), np.ones((1, s), np.int64), past=cache, pos=np.array([[s - 1]], np.int64)
    )
out["greedy"] = tokens
out["onnxruntime"] = ort.__version__
json.dump(out, open(f"{req['out']}/result.json", "w"))
