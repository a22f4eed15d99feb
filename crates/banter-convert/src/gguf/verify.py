# Runs a GGUF file in llama.cpp (llama-cpp-python) for `banter-export gguf --verify` (embedded in the binary):
# the prompt's token ids straight in (no tokenizer, no BOS added), then greedy decoding one token per call.
import json
import sys

from llama_cpp import Llama, __version__

req = json.load(open(sys.argv[1]))
llm = Llama(model_path=req["model"], n_ctx=req["n_ctx"], n_threads=req["threads"], n_gpu_layers=0,
            logits_all=True, verbose=False)
llm.eval(req["prompt"])
first = [float(x) for x in llm.scores[llm.n_tokens - 1]]
tokens = []
for _ in range(req["steps"]):
    row = llm.scores[llm.n_tokens - 1]
    t = int(row.argmax())
    tokens.append(t)
    llm.eval([t])
json.dump({"greedy": tokens, "first_logits": first, "llama_cpp": __version__}, open(req["out"], "w"))
