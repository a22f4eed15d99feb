"""A MediaWiki API stand-in on 127.0.0.1 that keeps the limits the real API documents, for the examples:
list=random gives at most 500 titles; TextExtracts gives one whole-article extract per request (exlimit
applies only with exintro, at most 20); more than 50 page ids is an error.

Usage: mediawiki_mock.py PORT_FILE  (writes the port it listens on to PORT_FILE, serves until killed)."""

import http.server
import itertools
import json
import socketserver
import sys
import urllib.parse

FACTS = ["was first described in the eighteenth century", "is taught in many schools today",
         "has a long and varied history", "attracts researchers from several countries",
         "changed how people think about nature", "remains an active field of study"]
IDS = itertools.count(1)


def text(i, intro):
    lead = " ".join(f"Topic {i} {FACTS[(i + j) % len(FACTS)]}." for j in range(4))
    return lead if intro else lead + "\n\n== History ==\n" + " ".join(f"Topic {i} {f}." for f in FACTS)


def answer(q):
    one = lambda k, d=None: q.get(k, [d])[0]
    if one("action") != "query" or one("format") != "json":
        return {"error": {"code": "badparams", "info": "action=query&format=json expected"}}
    out = {"batchcomplete": True, "query": {}}
    if one("list") == "random":
        n = min(500, 500 if one("rnlimit") == "max" else int(one("rnlimit", "1")))
        out["query"]["random"] = [{"id": i, "ns": 0, "title": f"Topic {i}"} for i in itertools.islice(IDS, n)]
        out["continue"] = {"rncontinue": "0.5|0.6|1|0", "continue": "-||"}
    ids = [int(x) for x in one("pageids", "").split("|") if x]
    if len(ids) > 50:
        return {"error": {"code": "toomanyvalues", "info": "The limit is 50."}}
    if ids:
        intro = "exintro" in q
        limit = min(20, int(one("exlimit", "1")) if one("exlimit") != "max" else 20) if intro else 1
        pages = []
        for k, i in enumerate(ids):
            p = {"pageid": i, "ns": 0, "title": f"Topic {i}", "fullurl": f"https://en.wikipedia.org/wiki/Topic_{i}"}
            if "extracts" in one("prop", "") and k < limit:
                p["extract"] = text(i, intro)
            pages.append(p)
        if len(ids) > limit:
            out["continue"] = {"excontinue": limit, "continue": "||"}
        out["query"]["pages"] = pages
    return out


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        u = urllib.parse.urlparse(self.path)
        if u.path == "/robots.txt":
            body, ctype = b"User-agent: *\nAllow: /\n", "text/plain"
        else:
            body, ctype = json.dumps(answer(urllib.parse.parse_qs(u.query))).encode(), "application/json"
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


with socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler) as s:
    open(sys.argv[1], "w").write(str(s.server_address[1]))
    s.serve_forever()
