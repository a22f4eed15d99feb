"""`make bench` for banter-scrape's main-text extraction: the public article-extraction-benchmark (181 pages,
gold text, its own `evaluate.py`), scored for banter-scrape (the vote), each candidate extractor it votes
over, and Python trafilatura (the reference), all in this run on this machine.

usage: python extraction.py BANTER_SCRAPE_BINARY CANDIDATES_BINARY ARCHIVE WORK_DIR"""
import gzip, json, os, subprocess, sys, tarfile, time

binary, candidates, archive, work = sys.argv[1:5]
root = os.path.join(work, "article-extraction-benchmark")
if not os.path.exists(os.path.join(root, "evaluate.py")):
    os.makedirs(root, exist_ok=True)
    with tarfile.open(archive) as t:
        t.extractall(root, filter="data")
pages = os.path.join(root, "pages")
os.makedirs(pages, exist_ok=True)
keys = []
for name in sorted(os.listdir(os.path.join(root, "html"))):
    key = name.removesuffix(".html.gz")
    keys.append(key)
    dest = os.path.join(pages, key + ".html")
    if not os.path.exists(dest):
        with gzip.open(os.path.join(root, "html", name), "rb") as f, open(dest, "wb") as g:
            g.write(f.read())
outdir = os.path.join(root, "output")
os.makedirs(outdir, exist_ok=True)
for old in os.listdir(outdir):
    os.unlink(os.path.join(outdir, old))

def save(name, texts):
    with open(os.path.join(outdir, name + ".json"), "w") as f:
        json.dump({k: {"articleBody": texts.get(k, "")} for k in keys}, f)

def key_of(path): return os.path.basename(path).removesuffix(".html")

timings = {}
t0 = time.perf_counter()
docs = os.path.join(root, "banter.jsonl")
run = subprocess.run([binary, "extract", pages, "--allow-partial", "--json", "-o", docs], capture_output=True, text=True)
timings["banter_scrape"] = time.perf_counter() - t0
report = json.loads(run.stdout)
save("banter_scrape", {key_of(d["path"]): d["text"] for d in map(json.loads, open(docs, encoding="utf-8"))})

t0 = time.perf_counter()
out = subprocess.run([candidates, pages], capture_output=True, text=True, check=True).stdout
timings["candidates (all five)"] = time.perf_counter() - t0
by_name = {}
for rec in map(json.loads, out.splitlines()):
    by_name.setdefault(rec["name"], {})[key_of(rec["path"])] = rec["text"]
for name, texts in by_name.items():
    save("cand_" + name.replace(" ", "_").replace("-", "_"), texts)

import trafilatura
t0 = time.perf_counter()
ref = {}
for k in keys:
    with open(os.path.join(pages, k + ".html"), "rb") as f:
        ref[k] = trafilatura.extract(f.read()) or ""
timings[f"python trafilatura {trafilatura.__version__}"] = time.perf_counter() - t0
save("python_trafilatura", ref)

res = subprocess.run([sys.executable, "evaluate.py", "--n-bootstrap", "200", "--output", "scores.json"],
                     cwd=root, capture_output=True, text=True, check=True)
scores = json.load(open(os.path.join(root, "scores.json")))
print("| extractor (article-extraction-benchmark, 181 pages) | F1 | precision | recall | pages without text |")
print("|---|---:|---:|---:|---:|")
empty = {n: sum(1 for v in json.load(open(os.path.join(outdir, n + ".json"))).values() if not v["articleBody"].strip())
         for n in scores}
for name in sorted(scores, key=lambda n: -scores[n]["f1"]):
    s = scores[name]
    label = {"banter_scrape": "**banter-scrape (vote)**"}.get(name, name.replace("cand_", "candidate: "))
    print(f"| {label} | {s['f1']:.3f} ± {s['f1_std']:.3f} | {s['precision']:.3f} | {s['recall']:.3f} | {empty[name]} |")
print()
print(f"banter-scrape extract: exit {run.returncode}, failed by reason {report.get('failed_by_reason', {})}")
print("| run | seconds for 181 pages | pages/s |")
print("|---|---:|---:|")
for name, secs in timings.items():
    print(f"| {name} | {secs:.2f} | {len(keys) / secs:.0f} |")
