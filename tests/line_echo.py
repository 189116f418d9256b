"""A long-lived echo server on loopback and the one-line probe the R43 tests use on sessions through it."""

from __future__ import annotations

import contextlib
import socket
import socketserver
import threading
from collections.abc import Iterator


class _StreamEcho(socketserver.BaseRequestHandler):
    """Echoes for as long as the client talks: a long-lived session."""

    def handle(self) -> None:
        while data := self.request.recv(1024):
            self.request.sendall(data)


@contextlib.contextmanager
def stream_echo_server() -> Iterator[int]:
    """Serve on 127.0.0.1 for the block; yields the port."""
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _StreamEcho)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


def talks(connection: socket.socket) -> bool:
    """One line there and back; False once the session is closed (or stays silent past its timeout)."""
    try:
        connection.sendall(b"tick\n")
        return connection.recv(1024) == b"tick\n"
    except OSError:
        return False
