#!/usr/bin/env python3
"""The server under long conversations (issue 26): one request of N one-word turns, and a one-turn request
sent 20 ms after it, for N from 1 to 5,000 (over the 1,024-turn cap: 400). Usage: turns.py BIN_DIR MODEL."""
import json, subprocess, sys, time, threading, urllib.request
model = sys.argv[2]
p = subprocess.Popen([sys.argv[1] + "/banter-chat", "serve", "--model", model, "--port", "0", "--max-request-bytes", "10000000"], stderr=subprocess.PIPE, text=True)
base = None
while base is None:
    line = p.stderr.readline()
    if "http://" in line:
        base = "http://" + line.split("http://")[1].split("/")[0]
def post(path, body):
    req = urllib.request.Request(base + path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    t = time.time()
    try:
        with urllib.request.urlopen(req) as r:
            code = r.status; r.read()
    except urllib.error.HTTPError as e:
        code = e.code; e.read()
    return code, time.time() - t
turns = lambda n: [{"role": "user" if i % 2 == 0 else "assistant", "content": "word"} for i in range(n)]
post("/v1/chat/completions", {"messages": turns(1), "max_tokens": 4})
for n in [1, 250, 500, 1023, 1250, 2500, 5000]:
    res = {}
    def side():
        time.sleep(0.02)
        res["side"] = post("/v1/chat/completions", {"messages": turns(1), "max_tokens": 4})
    th = threading.Thread(target=side); th.start()
    code, secs = post("/v1/chat/completions", {"messages": turns(n), "max_tokens": 4})
    th.join()
    print(f"{n:5d} turns: HTTP {code} in {secs*1000:.0f} ms; a concurrent 1-turn request: HTTP {res['side'][0]} in {res['side'][1]*1000:.0f} ms")
p.kill()
