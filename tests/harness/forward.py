"""Forward TCP connections from the host's loopback into the node's network namespace.

The node's namespace has no route out and no link to the host, so nothing on the
host can connect into it. This process bridges exactly one port: its listening
socket was created (and bound to 127.0.0.1) in the host's namespace and is
inherited as a file descriptor, while the process itself runs inside the node's
namespace (started with `nsenter --net=...`), so every upstream socket it creates
connects there. No route or link is added.

    python -m tests.harness.forward --listen-fd N --to 127.0.0.1:6443
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import sys
import threading

BUFFER = 65536


def pump(source: socket.socket, sink: socket.socket) -> None:
    """Copy source to sink until EOF, then half-close sink (so a watch can end cleanly)."""
    with contextlib.suppress(OSError):
        while data := source.recv(BUFFER):
            sink.sendall(data)
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)


def serve_one(client: socket.socket, upstream: tuple[str, int]) -> None:
    with client:
        try:
            server = socket.create_connection(upstream, timeout=10)
        except OSError as error:
            print(f"forward: {upstream[0]}:{upstream[1]}: {error}", file=sys.stderr, flush=True)
            return
        with server:
            server.settimeout(None)
            back = threading.Thread(target=pump, args=(server, client), daemon=True)
            back.start()
            pump(client, server)
            back.join()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="forward", description=__doc__)
    parser.add_argument("--listen-fd", type=int, required=True)
    parser.add_argument("--to", required=True, help="HOST:PORT inside this process's namespace")
    args = parser.parse_args(argv)
    host, _, port = args.to.rpartition(":")
    upstream = (host, int(port))
    listener = socket.socket(fileno=args.listen_fd)
    print(f"forward: {listener.getsockname()} -> {args.to}", flush=True)
    while True:
        client, _address = listener.accept()
        threading.Thread(target=serve_one, args=(client, upstream), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
