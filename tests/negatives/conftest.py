"""A local fake of an OpenAI-compatible chat endpoint, and hand-made shapes scenes."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from vlmalign.data.shapes import Scene, ShapeObject


class FakeChatServer:
    """Replies to POST /v1/chat/completions with the reply of the first marker found in the prompt.

    ``fail_next`` is a list of HTTP statuses to answer first, one per request (retry tests); every
    request's prompt and headers are recorded, so a test can tell whether the model was asked at all.
    """

    def __init__(self) -> None:
        self.replies: dict[str, str] = {}
        self.fail_next: list[int] = []
        self.prompts: list[str] = []
        self.headers: list[dict[str, str]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.headers.append(dict(self.headers))
                if self.path != "/v1/chat/completions":
                    return self._send(404, {"error": f"no route {self.path}"})
                if server.fail_next:
                    return self._send(server.fail_next.pop(0), {"error": "planned failure"})
                prompt = body["messages"][0]["content"]
                server.prompts.append(prompt)
                reply = next((r for marker, r in server.replies.items() if marker in prompt), "[]")
                self._send(200, {"choices": [{"index": 0, "message": {"role": "assistant", "content": reply}}],
                                 "model": body["model"]})

            def _send(self, status: int, payload: dict) -> None:
                blob = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(blob)))
                self.end_headers()
                self.wfile.write(blob)

            def log_message(self, *args) -> None:  # keep test output quiet
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    @property
    def num_requests(self) -> int:
        return len(self.headers)


@pytest.fixture
def chat_server():
    server = FakeChatServer()
    server.thread.start()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


@pytest.fixture
def scene() -> Scene:
    """A large red circle at the top left, a small blue square at the center, a small green triangle at the bottom."""
    return Scene("hand", (ShapeObject("circle", "red", "large", "top left"),
                          ShapeObject("square", "blue", "small", "center"),
                          ShapeObject("triangle", "green", "small", "bottom")))
