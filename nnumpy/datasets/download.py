"""A careful downloader: mirrors, bounded retries, timeouts, verification,
and never a partial or unverified file left behind.

For each URL in turn, up to ``1 + retries`` attempts:

1. GET with connect/read timeouts and ``Accept-Encoding: identity`` (a
   server that compresses anyway is decoded, so the bytes hashed are the
   file itself);
2. stream into a temporary file in the target folder, refusing an HTML page,
   a body larger than the limit, a body shorter than its Content-Length, or
   an attempt that runs past its time limit;
3. verify the bytes (the caller's check, e.g. MD5 of the .gz or SHA-256 of
   the payload) and only then rename the temporary file into place.

Transient failures (timeouts, dropped connections, truncated bodies, HTTP
5xx and 429) are retried after an exponential backoff; permanent ones (other
HTTP errors, HTML pages, wrong data) move on to the next mirror at once.
When every URL fails, :class:`DownloadError` lists each URL and why.  The
temporary file is deleted on every failure, Ctrl-C included.
"""
from __future__ import annotations

import os
import time

from .._fileio import atomic_write, make_dirs
from .._progress import progress_bar
from .registry import local_files_advice

__all__ = ["download", "DownloadError"]

USER_AGENT = "nnumpy-downloader (+https://pypi.org/project/nnumpy/)"
_CHUNK = 1 << 16


class DownloadError(OSError):
    """Every URL failed; ``.failures`` holds (url, reason) for each attempt.

    ``dataset`` (a registered dataset's name, set by the loaders) adds advice
    on using local files instead; :meth:`message` words it for Python
    (``root=``) or for the command line (``--data-root``).
    """

    def __init__(self, target, failures, dataset=None, root=None):
        self.target, self.failures = target, [tuple(f) for f in failures]
        self.dataset, self.root = dataset, None if root is None else os.fspath(root)
        super().__init__(self.message())

    def __reduce__(self):                 # pickled with its fields (it crosses process boundaries)
        return type(self), (self.target, self.failures, self.dataset, self.root), self.__dict__

    def __str__(self):
        return self.message()

    def message(self, cli=False):
        """The report: each URL once, with its last reason and the number of
        attempts; then, for a dataset, how to use local files (``cli``: in
        the command line's words)."""
        attempts = {}
        for url, reason in self.failures:
            attempts.setdefault(url, []).append(reason)
        lines = [f"could not download {self.target}; tried:"]
        for url, reasons in attempts.items():
            count = f" ({len(reasons)} attempts)" if len(reasons) > 1 else ""
            lines.append(f"  {url}: {reasons[-1]}{count}")
        if attempts and all("resolve" in r[-1] for r in attempts.values()):     # no host name resolved
            lines.append("No server could be reached: is this machine offline?")
        if self.dataset is not None:
            lines.append(local_files_advice(self.dataset, self.root, cli))
        return "\n".join(lines)


class _Transient(Exception):
    """Worth retrying the same URL."""


class _Permanent(Exception):
    """Move on to the next URL."""


def _fetch(session, url, f, timeout, max_bytes, max_seconds, progress, desc):
    """Stream ``url`` into the open file ``f``; raise _Transient/_Permanent on failure."""
    import requests
    import urllib3

    start = time.monotonic()
    try:
        with session.get(url, stream=True, timeout=timeout, allow_redirects=True,
                         headers={"Accept-Encoding": "identity", "User-Agent": USER_AGENT}) as r:
            if r.status_code >= 400:
                reason = f"HTTP {r.status_code} {r.reason or ''}".strip()
                if r.status_code >= 500 or r.status_code == 429:
                    raise _Transient(reason)
                raise _Permanent(reason)
            ctype = r.headers.get("Content-Type", "")
            if "html" in ctype.lower():
                raise _Permanent(f"the server sent an HTML page (Content-Type: {ctype}) with HTTP "
                                 f"{r.status_code}, not the data file")
            encoded = r.headers.get("Content-Encoding", "identity").lower() not in ("", "identity")
            length = r.headers.get("Content-Length")
            length = int(length) if length and length.isdigit() and not encoded else None
            if length is not None and max_bytes is not None and length > max_bytes:
                raise _Permanent(f"the server announces {length:,} bytes, more than the {max_bytes:,} "
                                 f"this file can have")
            bar = progress_bar(progress, total=length, desc=desc, unit="B", unit_scale=True, unit_divisor=1024)
            received = 0
            try:
                while True:
                    # read1 returns as soon as any bytes arrive (unlike read(n), which waits
                    # for n), so the time limit below holds even against a slow drip.
                    chunk = r.raw.read1(_CHUNK, decode_content=True)
                    if not chunk:
                        break
                    if received == 0 and chunk[:1] == b"<":
                        raise _Permanent("the server sent an HTML/XML page with HTTP "
                                         f"{r.status_code}, not the data file")
                    received += len(chunk)
                    if max_bytes is not None and received > max_bytes:
                        raise _Permanent(f"the body exceeds {max_bytes:,} bytes, more than this file can have")
                    if time.monotonic() - start > max_seconds:
                        raise _Transient(f"the download took longer than {max_seconds:g} s")
                    f.write(chunk)
                    if bar is not None:
                        bar.update(len(chunk))
            finally:
                if bar is not None:
                    bar.close()
            if length is not None and received != length:
                raise _Transient(f"truncated: received {received:,} of {length:,} bytes")
            if received == 0:
                raise _Transient("the server sent an empty body")
    except urllib3.exceptions.ReadTimeoutError:          # from read1: the body went silent
        raise _Transient(f"timed out (no data for {timeout[1] if isinstance(timeout, tuple) else timeout} s)") from None
    except urllib3.exceptions.DecodeError as e:
        raise _Permanent(f"could not decode the server's content encoding ({_short(e)})") from None
    except urllib3.exceptions.HTTPError as e:
        raise _Transient(f"the connection broke mid-body ({_short(e)})") from None
    except requests.exceptions.Timeout as e:
        raise _Transient(f"timed out ({type(e).__name__}: timeout {timeout} s)") from None
    except requests.exceptions.ConnectionError as e:
        if _unresolvable(e):                             # no such host (or no network): not worth a retry
            raise _Permanent(f"connection failed ({_root_cause(e)})") from None
        raise _Transient(f"connection failed ({_root_cause(e)})") from None
    except requests.exceptions.RequestException as e:
        raise _Permanent(f"{type(e).__name__}: {_short(e)}") from None


def _unresolvable(e):
    """Whether a requests ConnectionError comes from a failed host-name lookup."""
    import urllib3
    reason = getattr(e.args[0], "reason", None) if e.args else None
    return isinstance(reason, urllib3.exceptions.NameResolutionError)


def _root_cause(e):
    """The innermost reason of a requests ConnectionError, without urllib3's pool prefix."""
    reason = getattr(e.args[0], "reason", None) if e.args else None
    text = str(reason if reason is not None else e)
    if "): " in text:
        text = text.split("): ", 1)[1]
    return _short(text)


def _short(e):
    text = str(e)
    return text if len(text) < 200 else text[:200] + "..."


def download(urls, dest, verify, timeout=(10.0, 30.0), retries=2, backoff=1.0, max_bytes=None,
             max_seconds=900.0, progress=None, session=None):
    """Download the first URL of ``urls`` that yields verified data to ``dest``.

    verify: a function of the downloaded bytes that raises ``ValueError``
    (with a reason) when they are wrong.  timeout:
    (connect, read) seconds; read is the longest silence allowed.  retries:
    extra attempts per URL on transient failures, after ``backoff * 2**k``
    seconds.  max_bytes: refuse larger bodies.  max_seconds: limit of one
    attempt.  progress: a byte progress bar (None: only on a terminal).

    Returns the path written.  Raises :class:`DownloadError` when every URL
    failed, and an ``OSError`` naming ``dest`` when the file cannot be
    written (a read-only folder, a full disk); either way no partial file is
    left.  A symbolic link at ``dest`` is written through (see
    :mod:`nnumpy._fileio`); the loaders never download onto one.
    """
    import requests

    dest = os.fspath(dest)
    own_session = session is None
    session = session or requests.Session()
    failures = []
    try:
        with make_dirs(os.path.dirname(os.path.abspath(dest))):   # folders it makes go again on failure
            _download_first(session, urls, dest, verify, failures, timeout, retries, backoff, max_bytes,
                            max_seconds, progress)
        return dest
    except OSError as e:
        if isinstance(e, DownloadError) or e.errno is None or e.filename is not None:
            raise
        # writing failed (a full disk, say): name the file; nothing partial was left
        raise type(e)(e.errno, f"could not save the download: {e.strerror or e}; nothing was written",
                      dest) from e
    finally:
        if own_session:
            session.close()


def _download_first(session, urls, dest, verify, failures, timeout, retries, backoff, max_bytes, max_seconds,
                    progress):
    """The loop of :func:`download`: each URL in turn, transient failures
    retried; appends (url, reason) to ``failures``; raises DownloadError."""
    for url in urls:
        for attempt in range(retries + 1):
            try:
                with atomic_write(dest, prefix=f".{os.path.basename(dest)}.") as f:
                    _fetch(session, url, f, timeout, max_bytes, max_seconds, progress, os.path.basename(dest))
                    f.flush()
                    with open(f.name, "rb") as check:
                        data = check.read()
                    try:
                        verify(data)
                    except ValueError as e:
                        raise _Permanent(f"downloaded, but verification failed: {e}") from None
                return
            except _Permanent as e:
                failures.append((url, str(e)))
                break
            except _Transient as e:
                failures.append((url, str(e)))
                if attempt < retries:
                    time.sleep(backoff * 2 ** attempt)
    raise DownloadError(os.path.basename(dest), failures)
