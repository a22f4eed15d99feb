"""`make bench` for banter-whatsapp: messages/s and MB/s parsing a generated 1M-message export (iOS and
Android formats), beside a Python line-regex parser in the style of Asimbot's (iOS brackets only, no
locale handling) on the same file in the same run. Prints a markdown table.

usage: python bench.py BANTER_WHATSAPP_BINARY WORKDIR"""
import os, re, subprocess, sys, time

binary, work = sys.argv[1], sys.argv[2]
here = os.path.dirname(os.path.abspath(__file__))
os.makedirs(work, exist_ok=True)
N = 1_000_000

def export(fmt):
    path = os.path.join(work, f"wa-{fmt}-1m.txt")
    if not os.path.exists(path):
        subprocess.run([sys.executable, os.path.join(here, "gen_export.py"), path, str(N), fmt], check=True)
    return path

def banter(path):
    best = None
    for _ in range(2):
        t0 = time.perf_counter()
        out = subprocess.run(["/usr/bin/time", "-f", "%M", binary, "parse", path, "-q"], stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True, check=True)
        dt = time.perf_counter() - t0
        rss = int(out.stderr.strip().splitlines()[-1]) // 1024
        if best is None or dt < best[0]:
            best = (dt, rss)
    return best

HEADER = re.compile(r"^\u200e?\[(\d{1,2}/\d{1,2}/\d{2,4}), (\d{1,2}:\d{2}(?::\d{2})?)(?:[\s\u202f\u00a0]?[AP]M)?\] ([^:]+): (.*)$")

def python_reference(path):
    t0 = time.perf_counter()
    msgs = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            m = HEADER.match(line)
            if m:
                msgs.append({"date": m.group(1), "time": m.group(2), "author": m.group(3), "text": m.group(4)})
            elif msgs:
                msgs[-1]["text"] += "\n" + line
    return time.perf_counter() - t0, len(msgs)

print("| parser | export | messages/s | MB/s | peak RSS MB |")
print("|---|---|---:|---:|---:|")
for fmt in ("ios", "android"):
    path = export(fmt)
    mb = os.path.getsize(path) / 1e6
    dt, rss = banter(path)
    print(f"| banter-whatsapp parse (→ JSONL) | {fmt}, {mb:.0f} MB | {N / dt:,.0f} | {mb / dt:.1f} | {rss} |")
    if fmt == "ios":
        pdt, n = python_reference(path)
        print(f"| Python regex, Asimbot-style (iOS only, no JSON out) | {fmt}, {mb:.0f} MB | {n / pdt:,.0f} | {mb / pdt:.1f} | |")
