"""`make bench` for banter-validate: MB/s and records/s with all default checks on a generated chat corpus,
on 1 and 2 threads, peak RSS at 50 MB and 200 MB, and beside it a plain Python `json.loads` loop over the
same file (a floor any Python validator sits below). Prints a markdown table.

usage: python bench.py BANTER_VALIDATE_BINARY WORKDIR"""
import json, os, subprocess, sys, time

binary, work = sys.argv[1], sys.argv[2]
here = os.path.dirname(os.path.abspath(__file__))
os.makedirs(work, exist_ok=True)

def corpus(mb):
    path = os.path.join(work, f"chat-{mb}mb.jsonl")
    if not os.path.exists(path):
        subprocess.run([sys.executable, os.path.join(here, "gen_corpus.py"), path, str(mb)], check=True)
    return path

def banter(path, threads):
    best = None
    for _ in range(2):
        out = subprocess.run([binary, path, "--threads", str(threads), "--json", "--min-score", "0"],
                             capture_output=True, text=True, check=True)
        t = json.loads(out.stdout)["throughput"]
        if best is None or t["mb_per_s"] > best["mb_per_s"]:
            best = t
    return best

def python_floor(path):
    t0 = time.perf_counter(); n = b = 0
    with open(path, "rb") as f:
        for line in f:
            json.loads(line); n += 1; b += len(line)
    dt = time.perf_counter() - t0
    return b / dt / 1e6, n / dt

small, big = corpus(50), corpus(200)
rows = []
for threads in (1, 2):
    t = banter(big, threads)
    rows.append((f"banter-validate, {threads} thread{'s' if threads > 1 else ''}, 200 MB", t["mb_per_s"], t["records_per_s"], t["peak_rss_mb"]))
t50 = banter(small, 2)
rows.append(("banter-validate, 2 threads, 50 MB", t50["mb_per_s"], t50["records_per_s"], t50["peak_rss_mb"]))
mbs, rps = python_floor(big)
rows.append(("Python `json.loads` loop (no checks), 200 MB", round(mbs, 1), round(rps), None))
print("| banter-validate (all default checks) | MB/s | records/s | peak RSS MB |")
print("|---|---:|---:|---:|")
for name, a, b, c in rows:
    print(f"| {name} | {a} | {int(b):,} | {'' if c is None else c} |")
