"""FAKE misbehaving model servers for the fault suite (not a real backend): a tiny TCP server in a thread
that accepts connections and then stays `silent` (reads the request, never answers), speaks `garbage`
(bytes that are not HTTP), answers `not_json` (HTTP 200 whose body is not JSON), or `hangs_up` (closes
the connection as soon as the request arrived). A `dead` backend is a free port nobody listens on."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from middleware.server.background import free_port

MODES = ("silent", "garbage", "not_json", "hangs_up")


@contextmanager
def fake_backend(mode: str) -> Iterator[str]:
    """A FAKE server misbehaving as `mode`; yields an `openai://` backend spec pointing at it."""
    assert mode in MODES, mode
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    listener.settimeout(0.2)
    stop = threading.Event()
    held: list[socket.socket] = []

    def answer(conn: socket.socket) -> None:
        try:
            conn.settimeout(5)
            conn.recv(65536)
            if mode == "garbage":
                conn.sendall(b"\x00\xffTHIS IS NOT HTTP\r\n\r\n\x00")
                conn.close()
            elif mode == "not_json":
                body = b"<html>surprise</html>"
                head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                conn.sendall(head % len(body) + b"Connection: close\r\n\r\n" + body)
                conn.close()
            elif mode == "hangs_up":
                conn.close()
            else:
                held.append(conn)  # silent: keep it open, say nothing
        except OSError:
            pass

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=answer, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=serve, name=f"fake-backend-{mode}", daemon=True)
    thread.start()
    try:
        yield f"openai://127.0.0.1:{listener.getsockname()[1]}/v1"
    finally:
        stop.set()
        listener.close()
        thread.join(timeout=5)
        for conn in held:
            conn.close()


def dead_backend() -> str:
    """An `openai://` spec for a port nobody listens on (connection refused)."""
    return f"openai://127.0.0.1:{free_port()}/v1"
