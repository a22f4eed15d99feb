# Shared by the example scripts (sourced, not run).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
BIN=${BANTER_BIN:-$PWD/target/release}
export PATH="$BIN:$PATH"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/banter-example.XXXXXX")
trap 'rm -rf "$WORK"; [ -n "${SERVER:-}" ] && kill "$SERVER" 2>/dev/null || true' EXIT
say() { printf '\n-- %s\n' "$*"; }

# Serves a directory on 127.0.0.1; sets PORT and SERVER.
serve_dir() {
  python3 - "$1" "$WORK/port" <<'PY' &
import http.server, socketserver, sys, functools
class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a): pass
h = functools.partial(Quiet, directory=sys.argv[1])
with socketserver.TCPServer(("127.0.0.1", 0), h) as s:
    open(sys.argv[2], "w").write(str(s.server_address[1]))
    s.serve_forever()
PY
  SERVER=$!
  for _ in $(seq 50); do [ -s "$WORK/port" ] && break; sleep 0.1; done
  PORT=$(cat "$WORK/port")
}
