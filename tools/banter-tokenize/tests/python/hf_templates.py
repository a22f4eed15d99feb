"""transformers' apply_chat_template for each template × conversation × add_generation_prompt.
Usage: hf_templates.py TEMPLATES_JSON CONVERSATIONS_JSON; prints {"name/i/g": text or {"error": ...}}."""
import json
import sys

from tokenizers import Tokenizer, models
from transformers import PreTrainedTokenizerFast

t = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.BPE()), bos_token="<s>", eos_token="</s>")
templates, convs = json.loads(sys.argv[1]), json.loads(sys.argv[2])
out = {}
for name, src in templates.items():
    for i, c in enumerate(convs):
        for g in (False, True):
            try:
                r = t.apply_chat_template(c, chat_template=src, tokenize=False, add_generation_prompt=g)
            except Exception as e:  # raise_exception in the template
                r = {"error": str(e)}
            out[f"{name}/{i}/{str(g).lower()}"] = r
print(json.dumps(out))
