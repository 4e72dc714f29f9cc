"""A real HTTP server on 127.0.0.1 that serves files under /<mirror>/<name>,
with faults injected per mirror, for testing the downloader."""
import _thread
import gzip
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FAULTS = ("ok", "404", "500", "500-once", "cut", "wrong", "html", "html-octet", "stall",
          "gzip-encoding", "interrupt", "drip")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):          # keep test output clean
        pass

    def do_GET(self):
        srv = self.server
        parts = self.path.strip("/").split("/")
        mirror, name = (parts[0], parts[-1]) if len(parts) >= 2 else ("", parts[-1])
        with srv.lock:
            srv.requests.append((mirror, name, dict(self.headers)))
            count = sum(1 for m, n, _ in srv.requests if (m, n) == (mirror, name))
        fault = srv.faults.get(mirror, "ok")
        body = srv.files.get(name)
        if body is None or fault == "404":
            return self._send(404, b"not found", "text/plain")
        if fault == "500" or (fault == "500-once" and count == 1):
            return self._send(500, b"internal error", "text/plain")
        if fault == "html":
            return self._send(200, b"<!DOCTYPE html><html><body>Please log in</body></html>",
                              "text/html; charset=utf-8")
        if fault == "html-octet":
            return self._send(200, b"<html><body>mirror moved</body></html>", "application/octet-stream")
        if fault == "wrong":
            body = bytearray(body)
            body[len(body) // 2] ^= 0xFF
            return self._send(200, bytes(body))
        if fault == "gzip-encoding":
            return self._send(200, gzip.compress(body), extra={"Content-Encoding": "gzip"})
        if fault in ("cut", "stall", "interrupt", "drip"):
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            half = len(body) // 2
            self.wfile.write(body[:half])
            self.wfile.flush()
            if fault == "stall":
                time.sleep(srv.stall_seconds)
            elif fault == "interrupt":
                _thread.interrupt_main()          # Ctrl-C in the downloading thread
                # keep waking the reader up (a byte every 20 ms, for up to 10 s, until it hangs up):
                # the interrupt lands when the main thread next runs Python, which a busy machine may
                # delay; a body that ended after a second could end first
                deadline = time.monotonic() + 10
                i = half
                while i < len(body) - 1 and time.monotonic() < deadline:
                    time.sleep(0.02)
                    try:
                        self.wfile.write(body[i:i + 1])
                        self.wfile.flush()
                    except OSError:               # the client hung up: it was interrupted
                        break
                    i += 1
            elif fault == "drip":                 # never silent long enough for a read timeout
                for i in range(half, len(body)):
                    time.sleep(0.05)
                    self.wfile.write(body[i:i + 1])
                    self.wfile.flush()
            self.close_connection = True
            return
        return self._send(200, body)

    def _send(self, status, body, ctype="application/octet-stream", extra=None):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)


class Mirror:
    """``with Mirror(files) as m: m.url("m1")`` -> "http://127.0.0.1:PORT/m1/"."""

    def __init__(self, files, stall_seconds=3.0):
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.daemon_threads = True
        self.server.files = dict(files)
        self.server.faults = {}
        self.server.requests = []
        self.server.lock = threading.Lock()
        self.server.stall_seconds = stall_seconds
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def url(self, mirror):
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/{mirror}/"

    def fault(self, mirror, kind):
        assert kind in FAULTS
        self.server.faults[mirror] = kind

    @property
    def requests(self):
        return list(self.server.requests)
