#!/usr/bin/env python3
"""Writes the round-2 hostile inputs (issue 26) into the current folder: a zip whose headers claim 4 GB
compressed; torch.save checkpoints with a memo bomb, 200,000 nested tuples, 3 M MARKs, a stride-0 view and a
negative stride (tiny GPT-2 folders); a token file whose header claims 2^61 blocks; chat templates that never
end or double text or a list. Usage: hostile_inputs.py TOKENIZER_JSON (linked into each model folder).
Used by examples/bad-inputs.sh and tools/banter-chat/bench/hostile.sh."""
import json, os, struct, sys, zipfile
line = b"15/01/2023, 21:08 - Ann: hi\n"
with zipfile.ZipFile("liar.zip", "w", zipfile.ZIP_DEFLATED) as z:
    z.writestr("_chat.txt", line * ((64 << 20) // len(line)))
b = bytearray(open("liar.zip", "rb").read())
for sig, at in ((b"PK\x03\x04", 18), (b"PK\x01\x02", 20)):
    i = b.index(sig)
    b[i + at:i + at + 4] = struct.pack("<I", 0xF0000000)
open("liar.zip", "wb").write(bytes(b))
config = {"model_type": "gpt2", "n_embd": 8, "n_layer": 1, "n_head": 2, "vocab_size": 300, "n_positions": 16}
tensor = lambda size, stride: (b"\x80\x02}q\x00X\x01\x00\x00\x00wq\x01ctorch._utils\n_rebuild_tensor_v2\nq\x02((X\x07\x00\x00\x00storageq\x03ctorch\nFloatStorage\nq\x04X\x01\x00\x00\x000q\x05X\x03\x00\x00\x00cpuq\x06K\x02tq\x07QK\x00"
    + b"J" + struct.pack("<i", size) + b"\x85q\x08J" + struct.pack("<i", stride) + b"\x85q\t\x89ccollections\nOrderedDict\nq\n)Rq\x0btq\x0cRq\rs.")
memo = b"\x80\x02K\x01q\x00" + b"".join(bytes([ord("h"), k, ord("h"), k, 0x86, ord("q"), k + 1]) for k in range(40)) + b"."
deep = b")" + b"\x85" * 200000 + b"."
cases = {"memo-bomb": memo, "deep-tuple": deep, "marks": b"(" * 3000000, "stride-zero": tensor(300000000, 0), "negative-stride": tensor(2, -1)}
for name, pkl in cases.items():
    os.makedirs(name, exist_ok=True)
    json.dump(config, open(f"{name}/config.json", "w"))
    with zipfile.ZipFile(f"{name}/pytorch_model.bin", "w") as z:
        z.writestr("archive/data.pkl", pkl)
        z.writestr("archive/data/0", b"\0" * 8)
    os.link(sys.argv[1], f"{name}/tokenizer.json")
head = {"format": "banter-tokens", "version": 1, "dtype": "u16", "blocks": 1 << 61, "tokens": 4, "ids_offset": 4096,
        "mask_offset": 4104, "index_offset": 4112, "vocab_size": 300, "block_size": 8}
h = b"BNTRTOK1" + json.dumps(head).encode()
open("overflow.bin", "wb").write(h + b" " * (4096 - len(h)) + b"\0" * 40)
templates = {
    "tmpl-loop": "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
    "tmpl-doubling": "{% set ns = namespace(s='ab') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}",
    "tmpl-list": "{% set ns = namespace(l=[1]) %}{% for i in range(64) %}{% set ns.l = ns.l + ns.l %}{% endfor %}{{ ns.l | length }}",
}
for name, t in templates.items():
    os.makedirs(name, exist_ok=True)
    json.dump(config, open(f"{name}/config.json", "w"))
    json.dump({"chat_template": t}, open(f"{name}/tokenizer_config.json", "w"))
    os.link(sys.argv[1], f"{name}/tokenizer.json")
