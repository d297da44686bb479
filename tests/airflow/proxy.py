"""A reverse proxy that serves Airflow under a path prefix only, as Astro's ingress and most proxies do:
``http://127.0.0.1:<port>/airflow/...`` goes to the API server unchanged (path and Host kept), and every
other path is a 404, so that a link or a call that leaves the prefix fails as it would there."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

# hop-by-hop headers, and those httpx recomputes for the body it read whole
DROPPED = {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding", "upgrade"}


@contextlib.contextmanager
def prefix_proxy(upstream: str, prefix: str) -> Iterator[str]:
    """Yields the proxy's URL (without the prefix)."""
    client = httpx.Client(base_url=upstream, timeout=60, follow_redirects=False)

    class Forward(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def forward(self) -> None:
            if not (self.path == prefix or self.path.startswith((f"{prefix}/", f"{prefix}?"))):
                self.reply(404, [("Content-Type", "text/plain")], f"{self.path} is not under {prefix}/".encode())
                return
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = [(k, v) for k, v in self.headers.items() if k.lower() not in DROPPED | {"accept-encoding"}]
            answer = client.request(self.command, self.path, headers=headers, content=body)
            kept = [(k, v) for k, v in answer.headers.multi_items() if k.lower() not in DROPPED]
            self.reply(answer.status_code, kept, answer.content)

        def reply(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = forward

        def log_message(self, *args) -> None:  # quiet: pytest shows a failure's own output
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Forward)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        client.close()
