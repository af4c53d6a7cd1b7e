"""A fault-injecting HTTPS proxy in front of the test kube-apiserver (127.0.0.1 only).

A test fixture: it forwards every request to the real apiserver and, by counters, answers some
with a fault instead:

* every ``error_every``-th plain request (not a watch, not a log follow): ``500``;
* every ``conflict_every``-th ``PUT`` of a ``/status`` subresource: ``409``;
* every ``gone_every``-th watch: one ``ERROR`` event with code 410 (Gone), then the end;
* every other watch and every log follow: cut after ``cut_after`` seconds, mid-stream.

Responses are re-sent chunk by chunk (``Transfer-Encoding: chunked``, one connection per
request), so events and log lines pass as they come; a cut stream lacks its last chunk, as a
dropped connection does. ``counts`` says what was injected.
"""

from __future__ import annotations

import http.client
import http.server
import json
import ssl
import threading
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "content-length", "te", "upgrade"}


class FaultProxy:
    def __init__(
        self,
        upstream: str,
        cert: Path,
        key: Path,
        *,
        error_every: int = 4,
        conflict_every: int = 2,
        gone_every: int = 3,
        cut_after: float = 1.0,
    ) -> None:
        self.upstream = urlsplit(upstream)
        self.error_every = error_every
        self.conflict_every = conflict_every
        self.gone_every = gone_every
        self.cut_after = cut_after
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._seen: Counter[str] = Counter()
        self.enabled = True
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                proxy.forward(self)

            do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(cert), str(key))
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> FaultProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _tick(self, kind: str, every: int) -> bool:
        with self._lock:
            self._seen[kind] += 1
            hit = self.enabled and every > 0 and self._seen[kind] % every == 0
            if hit:
                self.counts[kind] += 1
            return hit

    def forward(self, h: http.server.BaseHTTPRequestHandler) -> None:
        query = urlsplit(h.path).query
        watch = "watch=true" in query or "watch=1" in query
        follow = "follow=true" in query
        body = h.rfile.read(int(h.headers.get("Content-Length") or 0))
        if watch and self._tick("gone", self.gone_every):
            event = {
                "type": "ERROR",
                "object": {
                    "kind": "Status",
                    "status": "Failure",
                    "code": 410,
                    "reason": "Expired",
                    "message": "injected: too old resource version",
                },
            }
            self._reply(h, 200, json.dumps(event).encode() + b"\n")
            return
        if not (watch or follow):
            status_put = h.command == "PUT" and h.path.split("?")[0].endswith("/status")
            if status_put and self._tick("conflict", self.conflict_every):
                self._reply(h, 409, _status(409, "Conflict", "injected conflict"))
                return
            if self._tick("error", self.error_every):
                self._reply(h, 500, _status(500, "InternalError", "injected error"))
                return
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        conn = http.client.HTTPSConnection(
            self.upstream.hostname or "127.0.0.1", self.upstream.port, context=ctx, timeout=120
        )
        try:
            headers = {k: v for k, v in h.headers.items() if k.lower() not in HOP_HEADERS}
            conn.request(h.command, h.path, body=body or None, headers=headers)
            resp = conn.getresponse()
            h.send_response(resp.status)
            for k, v in resp.getheaders():
                if k.lower() not in HOP_HEADERS:
                    h.send_header(k, v)
            h.send_header("Transfer-Encoding", "chunked")
            h.send_header("Connection", "close")
            h.end_headers()
            deadline = time.monotonic() + self.cut_after if (watch or follow) else None
            while True:
                chunk = resp.read1(65536)
                if not chunk:
                    h.wfile.write(b"0\r\n\r\n")
                    return
                h.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                h.wfile.flush()
                if deadline is not None and time.monotonic() > deadline and self.enabled:
                    with self._lock:
                        self.counts["cut"] += 1
                    return  # mid-stream: the client sees the connection end
        except (OSError, http.client.HTTPException):
            return  # the client or the apiserver went away
        finally:
            conn.close()

    @staticmethod
    def _reply(h: http.server.BaseHTTPRequestHandler, code: int, body: bytes) -> None:
        h.send_response(code)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(body)))
        h.send_header("Connection", "close")
        h.end_headers()
        h.wfile.write(body)


def _status(code: int, reason: str, message: str) -> bytes:
    return json.dumps(
        {
            "kind": "Status",
            "apiVersion": "v1",
            "status": "Failure",
            "code": code,
            "reason": reason,
            "message": message,
        }
    ).encode()
