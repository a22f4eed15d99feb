"""`make bench` for banter-scrape: pages/s fetching + extracting from a local server with --delay 0 (the
extraction scores on a public benchmark are extraction.py's).

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


def fetch(urls):
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write("\n".join(urls)); name = f.name
    t0 = time.perf_counter()
    out = subprocess.run([binary, "fetch", "--urls-file", name, "--allow-private", "--delay", "0", "-q"],
                         capture_output=True, text=True, check=True)
    dt = time.perf_counter() - t0
    os.unlink(name)
    return [json.loads(l) for l in out.stdout.splitlines()], dt

urls = [f"{base}/{FIXTURES[i % len(FIXTURES)]}?n={i}" for i in range(300)]
docs, dt = fetch(urls)
print("| banter-scrape fetch, local server, --delay 0 | pages | seconds | pages/s |")
print("|---|---:|---:|---:|")
print(f"| 5 fixture pages × 60 | {len(docs)} | {dt:.2f} | {len(docs) / dt:.0f} |")
