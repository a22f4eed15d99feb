"""`make bench` for banter-scrape: extraction precision/recall/F1 of lines on the fixture articles (expected
text written by hand), and pages/s fetching + extracting from a local server with --delay 0.

usage: python bench.py BANTER_SCRAPE_BINARY SITE_DIR"""
import http.server, json, os, socketserver, subprocess, sys, tempfile, threading, time

binary, site = sys.argv[1], os.path.abspath(sys.argv[2])
FIXTURES = ["articles/green-tea.html", "articles/python-gil.html", "articles/news.html", "forum/thread.html", "fa/persian.html"]

class Quiet(http.server.SimpleHTTPRequestHandler):
    def __init__(self, *a, **kw): super().__init__(*a, directory=site, **kw)
    def log_message(self, *a): pass

class Threaded(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True

srv = Threaded(("127.0.0.1", 0), Quiet)
threading.Thread(target=srv.serve_forever, daemon=True).start()
base = f"http://127.0.0.1:{srv.server_address[1]}"

def squash(s): return " ".join(s.split())
def lines(s): return [squash(l) for l in s.splitlines() if squash(l)]

def fetch(urls):
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write("\n".join(urls)); name = f.name
    t0 = time.perf_counter()
    out = subprocess.run([binary, "fetch", "--urls-file", name, "--allow-private", "--delay", "0", "-q"],
                         capture_output=True, text=True, check=True)
    dt = time.perf_counter() - t0
    os.unlink(name)
    return [json.loads(l) for l in out.stdout.splitlines()], dt

print("| fixture | precision | recall | F1 |")
print("|---|---:|---:|---:|")
docs, _ = fetch([f"{base}/{f}" for f in FIXTURES])
tot = 0
for f, d in zip(FIXTURES, docs):
    want = lines(open(os.path.join(site, f.replace(".html", ".expected.txt")), encoding="utf-8").read())
    got = lines(d["text"])
    p = sum(l in want for l in got) / max(len(got), 1)
    r = sum(l in got for l in want) / max(len(want), 1)
    f1 = 0 if p + r == 0 else 2 * p * r / (p + r)
    tot += f1
    print(f"| {f} | {p:.3f} | {r:.3f} | {f1:.3f} |")
print(f"| mean | | | {tot / len(FIXTURES):.3f} |")
urls = [f"{base}/{FIXTURES[i % len(FIXTURES)]}?n={i}" for i in range(300)]
docs, dt = fetch(urls)
print()
print("| banter-scrape fetch, local server, --delay 0 | pages | seconds | pages/s |")
print("|---|---:|---:|---:|")
print(f"| 5 fixture pages × 60 | {len(docs)} | {dt:.2f} | {len(docs) / dt:.0f} |")
