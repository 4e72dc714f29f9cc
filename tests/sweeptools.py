"""What the sweep tests share: running a sweep command, and the figures of a sweep folder that must
not depend on how or where the sweep ran."""
import hashlib
import json
import socket
import subprocess
import sys


def command(grid, data_root, out, *extra):
    """``nnumpy sweep`` of the sweep file ``grid`` into ``out``: a quick slice of the data, offline, no bars."""
    return [sys.executable, "-m", "nnumpy", "sweep", "--config", str(grid), "--out", str(out), "--data-root",
            str(data_root), "--limit-train", "12000", "--limit-test", "300", "--offline", "--quiet", *extra]


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=900, **kw)


def trial_files(out):
    """The trial.json of every finished trial in the sweep folder ``out``."""
    return sorted((out / "trials").glob("*/*/trial.json"))


def figures(out, png=True):
    """Everything of a finished sweep but times, hosts and processes: the summary, the tuning table,
    every trial's record and (with ``png``) the comparison plot."""
    got = {name: (out / name).read_text() for name in ("summary.md", "summary.csv", "tuning.csv")}
    for path in trial_files(out):
        meta = json.loads(path.read_text())
        meta.pop("diagnostics")
        meta["history"] = meta["history"] and {k: v for k, v in meta["history"].items() if k != "seconds"}
        got[str(path.relative_to(out))] = meta
    if png:       # (its digest: a failing comparison then shows a short diff, not one of two images' bytes)
        got["comparison.png"] = hashlib.sha256((out / "comparison.png").read_bytes()).hexdigest()
    return got


def closed_port():
    """A port on 127.0.0.1 where nothing listens."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port
