"""Real receivers on 127.0.0.1 for the outside-world tests: an HTTP server that
verifies Standard Webhooks signatures with the `standardwebhooks` library, and
an aiosmtpd SMTP server that keeps what it receives."""

from __future__ import annotations

import base64
import email
import email.policy
import json
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def new_secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(24)).decode()


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    verified: Any = None  # the parsed body when the signature held
    answered: int = 0

    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    """An HTTP receiver. `fail_first` requests get a 500, `hang_first` ones stall `hang_for` seconds."""

    def __init__(
        self,
        *,
        secret: str | None = None,
        port: int | None = None,
        fail_first: int = 0,
        hang_first: int = 0,
        hang_for: float = 5.0,
        delay: float = 0.0,
    ):
        self.secret = secret
        self.port = port or free_port()
        self.fail_first = fail_first
        self.hang_first = hang_first
        self.hang_for = hang_for
        self.delay = delay
        self.requests: list[Request] = []
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def delivered(self) -> list[Request]:
        """Requests answered 2xx, de-duplicated by webhook-id as a careful receiver would."""
        seen, out = set(), []
        for r in self.requests:
            key = r.headers.get("webhook-id") or r.headers.get("idempotency-key")
            if 200 <= r.answered < 300 and key not in seen:
                seen.add(key)
                out.append(r)
        return out

    def ok(self) -> list[Request]:
        return [r for r in self.requests if 200 <= r.answered < 300]

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def _handle(self):
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                req = Request(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                with receiver.lock:
                    receiver.requests.append(req)
                    n = len(receiver.requests)
                if n <= receiver.hang_first:
                    time.sleep(receiver.hang_for)
                if receiver.delay:
                    time.sleep(receiver.delay)
                status = 200
                if n <= receiver.fail_first:
                    status = 500
                elif receiver.secret is not None:
                    from standardwebhooks.webhooks import Webhook, WebhookVerificationError

                    try:
                        req.verified = Webhook(receiver.secret).verify(body, dict(self.headers))
                    except WebhookVerificationError:
                        status = 401
                req.answered = status
                try:
                    self.send_response(status)
                    self.send_header("content-length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:
                    pass

            do_POST = do_PUT = do_PATCH = do_GET = do_DELETE = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class SilentServer:
    """Accepts connections and never says a word: a receiver or an SMTP server that hangs."""

    def __init__(self, *, port: int | None = None):
        self.port = port or free_port()
        self.connections = 0
        self._open: list[socket.socket] = []
        self._sock: socket.socket | None = None
        self._running = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> SilentServer:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        sock.listen(16)
        sock.settimeout(0.1)
        self._sock, self._running = sock, True

        def accept() -> None:
            while self._running:
                try:
                    conn, _ = sock.accept()
                except (TimeoutError, OSError):
                    continue
                self.connections += 1
                self._open.append(conn)  # held open, unanswered

        threading.Thread(target=accept, daemon=True).start()
        return self

    def stop(self) -> None:
        self._running = False
        for conn in self._open:
            conn.close()
        if self._sock:
            self._sock.close()
            self._sock = None

    def env(self) -> dict[str, str]:
        """CASECTL_SMTP_* pointing at it."""
        return {"CASECTL_SMTP_HOST": "127.0.0.1", "CASECTL_SMTP_PORT": str(self.port), "CASECTL_SMTP_TLS": "none"}

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


@dataclass
class Mailbox:
    """What an aiosmtpd server received: (envelope recipients, parsed message)."""

    messages: list[tuple[list[str], Any]] = field(default_factory=list)
    delay: float = 0.0


class SmtpServer:
    def __init__(self, *, port: int | None = None, delay: float = 0.0, password: str | None = None):
        self.port = port or free_port()
        self.box = Mailbox(delay=delay)
        self.password = password
        self.controller = None

    def start(self) -> SmtpServer:
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult

        box = self.box
        password = self.password

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                import asyncio

                if box.delay:
                    await asyncio.sleep(box.delay)
                msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
                box.messages.append((list(envelope.rcpt_tos), msg))
                return "250 OK"

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = password is not None and auth_data.password.decode() == password
            return AuthResult(success=ok, handled=False)

        kwargs = {}
        if password is not None:
            kwargs = dict(authenticator=authenticator, auth_require_tls=False)
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port, **kwargs)
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller:
            self.controller.stop()
            self.controller = None

    @property
    def messages(self):
        return self.box.messages

    def env(self) -> dict[str, str]:
        return {
            "CASECTL_SMTP_HOST": "127.0.0.1",
            "CASECTL_SMTP_PORT": str(self.port),
            "CASECTL_SMTP_FROM": "casectl@example.com",
            "CASECTL_SMTP_TLS": "none",
        }

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def parts(msg) -> dict[str, str]:
    """content-type -> text of each leaf part."""
    return {p.get_content_type(): p.get_content() for p in msg.walk() if not p.is_multipart()}


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.05) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
