"""Runs a command and writes its peak RSS (MB) to OUTDIR/NAME-rankR.rss (R from torchrun's RANK).
usage: python rss.py OUTDIR NAME CMD [ARGS…]"""
import os, resource, subprocess, sys

out, name, cmd = sys.argv[1], sys.argv[2], sys.argv[3:]
rc = subprocess.call(cmd)
with open(os.path.join(out, f"{name}-rank{os.environ.get('RANK', '0')}.rss"), "w") as f:
    f.write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024))
sys.exit(rc)
