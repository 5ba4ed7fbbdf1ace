"""A TCP proxy in front of the API server, one per local pod, to cut one agent off.

Modes: "forward" (normal), "hang" (connections are accepted and requests read
but nothing is forwarded or answered: every call times out), "refuse" (every
connection is closed at once). TLS passes through untouched; the proxy listens
on 127.0.0.1, which the API server's certificate names.
"""

from __future__ import annotations

import contextlib
import socket
import threading

FORWARD, HANG, REFUSE = "forward", "hang", "refuse"


class ApiProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.mode = FORWARD
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._closed = threading.Event()
        threading.Thread(target=self._accept, daemon=True, name=f"proxy-{self.port}").start()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def set_mode(self, mode: str) -> None:
        self.mode = mode
        if mode == REFUSE:
            self._close_all()

    def close(self) -> None:
        self._closed.set()
        self._listener.close()
        self._close_all()

    def _close_all(self) -> None:
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.close()
            self._sockets.clear()

    def _track(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.add(sock)

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self.mode == REFUSE:
                client.close()
                continue
            self._track(client)
            if self.mode == HANG:
                continue  # held open, never answered
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            self._track(upstream)
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if self.mode == HANG:
                    continue  # swallowed: the caller waits until its own timeout
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_WR)
