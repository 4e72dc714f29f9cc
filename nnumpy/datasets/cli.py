"""``python -m nnumpy.datasets``: download, verify and list datasets.

    python -m nnumpy.datasets download mnist fashion-mnist [--data-root DIR] [--mirror URL ...]
    python -m nnumpy.datasets verify mnist [--data-root DIR]
    python -m nnumpy.datasets list                       which datasets are here, and where
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

from .._argtypes import count, seconds
from .download import DownloadError
from .loaders import DatasetNotFoundError, DatasetWarning, fetch, search_dirs
from .registry import DATASETS, ROLES


def add_action_arguments(q, action):
    """The arguments of ``download`` / ``verify`` (shared with the ``nnumpy`` command)."""
    q.add_argument("names", nargs="+", choices=list(DATASETS), metavar="NAME",
                   help="one or more of: " + ", ".join(DATASETS))
    q.add_argument("--data-root", "--root", dest="root", metavar="DIR", help="the folder holding the dataset's four files directly "
                                  "(only with a single NAME); default: the usual search path")
    if action == "download":
        q.add_argument("--mirror", action="append", metavar="URL",
                       help="base URL to download from instead of the built-in mirrors (repeatable)")
        q.add_argument("--timeout", type=seconds, default=30.0, help="read timeout in seconds (default 30)")
        q.add_argument("--retries", type=count, default=2, help="retries per URL on transient errors")


def add_arguments(p):
    sub = p.add_subparsers(dest="action", required=True, metavar="{download,verify,list}")
    for action, help_ in (("download", "fetch and verify datasets (only missing files are downloaded)"),
                          ("verify", "check local copies without touching the network")):
        add_action_arguments(sub.add_parser(action, help=help_, description=help_), action)
    sub.add_parser("list", help="show the known datasets and where they are looked for")


def list_datasets():
    """Each known dataset: whether a verified copy is here (and where), and where it is looked for."""
    for name, spec in DATASETS.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DatasetWarning)
            try:
                got = fetch(name, download=False)
                folders = sorted({str(path.parent) for _, path, _ in got.values()})
                status = "present, verified, in " + ", ".join(folders)
            except DatasetNotFoundError as e:
                status = (f"not here ({len(e.missing)} of {len(ROLES)} files missing or unverified); "
                          f"python -m nnumpy.datasets download {name}")
        print(f"{name}: {spec.title}\n  {status}\n  {spec.homepage}\n  mirrors: {', '.join(spec.mirrors)}\n"
              f"  searched: {', '.join(str(d) for d in search_dirs(name))}")
    return 0


def run_action(action, args):
    """Download or verify ``args.names``; prints what was found; returns an exit code."""
    if args.root is not None and not args.root.strip():
        print("error: --data-root needs a folder name", file=sys.stderr)
        return 2
    if args.root and len(args.names) > 1:
        print("error: --data-root names the folder of one dataset; give a single NAME", file=sys.stderr)
        return 2
    status = 0
    for name in args.names:
        t0 = time.perf_counter()
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", DatasetWarning)
                got = fetch(name, root=args.root, download=action == "download",
                            mirrors=getattr(args, "mirror", None),
                            timeout=(10.0, getattr(args, "timeout", 30.0)),
                            retries=getattr(args, "retries", 2))
            for w in caught:
                print(f"warning: {w.message}", file=sys.stderr)
        except (DatasetNotFoundError, DownloadError) as e:
            print(f"error: {e.message(cli=True)}", file=sys.stderr)
            status = 1
            continue
        except OSError as e:                 # the folder: not a folder, not writable, a full disk
            where = f": {e.filename}" if getattr(e, "filename", None) else ""
            print(f"error: {name}: {e.strerror or e}{where}", file=sys.stderr)
            status = 1
            continue
        print(f"{name}: verified in {time.perf_counter() - t0:.2f} s")
        for role in ROLES:
            arr, path, how = got[role]
            print(f"  {role:<13} {str(arr.shape):<16} {path}  ({how})")
    return status


def run(args):
    return list_datasets() if args.action == "list" else run_action(args.action, args)


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m nnumpy.datasets", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p)
    args = p.parse_args(argv)
    try:
        return run(args)
    except BrokenPipeError:                     # the reader went away (| head): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
