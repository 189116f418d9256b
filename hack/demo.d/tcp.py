"""Tiny TCP tools for hack/demo, run inside network namespaces with `ip netns exec`.

serve HOST PORT          echo server: answers every line with "<name> echoes: <line>"; prints READY
send HOST PORT MESSAGE   connect, send one line, print the answer (exit 1 if none)
probe HOST PORT          try to connect; print "connected" (exit 0) or why not (exit 1)
"""

from __future__ import annotations

import socket
import socketserver
import sys

TIMEOUT_SECONDS = 2.0


class EchoHandler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        for line in self.rfile:
            self.wfile.write(b"provider backend echoes: " + line)


def serve(host: str, port: int) -> int:
    socketserver.ThreadingTCPServer.allow_reuse_address = True
    with socketserver.ThreadingTCPServer((host, port), EchoHandler) as server:
        print("READY", flush=True)
        server.serve_forever()
    return 0


def send(host: str, port: int, message: str) -> int:
    with socket.create_connection((host, port), timeout=TIMEOUT_SECONDS) as connection:
        connection.sendall(message.encode() + b"\n")
        answer = connection.makefile("rb").readline().decode().strip()
    if not answer:
        print("no answer", file=sys.stderr)
        return 1
    print(answer)
    return 0


def probe(host: str, port: int) -> int:
    try:
        with socket.create_connection((host, port), timeout=TIMEOUT_SECONDS):
            print("connected")
            return 0
    except TimeoutError:
        print(f"no answer within {TIMEOUT_SECONDS:.0f} s (timed out)")
    except OSError as error:
        print(error.strerror or str(error))
    return 1


def main(argv: list[str]) -> int:
    if len(argv) >= 3 and argv[0] == "serve":
        return serve(argv[1], int(argv[2]))
    if len(argv) == 4 and argv[0] == "send":
        return send(argv[1], int(argv[2]), argv[3])
    if len(argv) == 3 and argv[0] == "probe":
        return probe(argv[1], int(argv[2]))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
