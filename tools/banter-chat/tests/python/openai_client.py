"""The official `openai` client against `banter-chat serve`: models, chat completions and completions,
streamed and not. Usage: openai_client.py BASE_URL. Prints "ok" when every check passes."""

import sys

import openai

client = openai.OpenAI(base_url=sys.argv[1] + "/v1", api_key="not-checked")

models = client.models.list()
assert len(models.data) == 1, models
model = models.data[0].id

messages = [{"role": "user", "content": "where are you?"}]
r = client.chat.completions.create(model=model, messages=messages, max_tokens=8, temperature=0)
reply = r.choices[0].message.content
assert isinstance(reply, str), r
assert r.choices[0].finish_reason in ("stop", "length"), r
u = r.usage
assert u.prompt_tokens > 0 and u.total_tokens == u.prompt_tokens + u.completion_tokens, u

stream = client.chat.completions.create(model=model, messages=messages, max_tokens=8, temperature=0, stream=True)
streamed = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
assert streamed.strip() == reply.strip(), (streamed, reply)

t = client.completions.create(model=model, prompt="where are", max_tokens=8, temperature=0)
assert t.object == "text_completion", t
text = t.choices[0].text
assert isinstance(text, str) and t.usage.completion_tokens > 0, t
stream = client.completions.create(model=model, prompt="where are", max_tokens=8, temperature=0, stream=True)
assert "".join(c.choices[0].text for c in stream if c.choices) == text

try:
    client.completions.create(model=model, prompt="", max_tokens=8)
    raise AssertionError("an empty prompt was accepted")
except openai.BadRequestError:
    pass
print("ok")
