"""A TCP proxy in front of the API server, one per local pod, to cut one agent off.

Modes: "forward" (normal), "hang" (connections are accepted and requests read
but nothing is forwarded or answered: every call times out), "refuse" (every
connection is closed at once). freeze_existing() makes the connections open now
go silent (half-open, as after a lost NAT entry) while new ones are forwarded.
TLS passes through untouched; the proxy listens on 127.0.0.1, which the API
server's certificate names.

Each hung request is recorded (hung_requests): from the first byte the client
sent after the mode became "hang" until the client gave up and closed the
connection, which is how long the agent let that request run.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from dataclasses import dataclass

FORWARD, HANG, REFUSE = "forward", "hang", "refuse"


@dataclass
class HungRequest:
    started: float  # monotonic: first byte the client sent while hung
    ended: float | None = None  # monotonic: the client closed the connection

    @property
    def duration(self) -> float | None:
        return None if self.ended is None else self.ended - self.started


class ApiProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.mode = FORWARD
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._sockets: set[socket.socket] = set()
        self._frozen: set[socket.socket] = set()  # client sockets whose traffic is dropped
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self.hung_requests: list[HungRequest] = []
        threading.Thread(target=self._accept, daemon=True, name=f"proxy-{self.port}").start()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def set_mode(self, mode: str) -> None:
        self.mode = mode
        if mode == REFUSE:
            self._close_all()

    def freeze_existing(self) -> None:
        """Every connection open now stops delivering anything, in both directions, without
        being closed; connections opened later are forwarded normally."""
        with self._lock:
            self._frozen |= self._sockets

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
                threading.Thread(target=self._swallow, args=(client,), daemon=True).start()
                continue  # held open, never answered
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            self._track(upstream)
            for source, sink, watched in ((client, upstream, client), (upstream, client, client)):
                threading.Thread(target=self._pump, args=(source, sink, watched), daemon=True).start()

    def _swallow(self, client: socket.socket) -> None:
        """A connection accepted while hanging: read and drop what the client sends."""
        request: HungRequest | None = None
        try:
            while client.recv(65536):
                if request is None:
                    request = HungRequest(time.monotonic())
                    self.hung_requests.append(request)
        except OSError:
            pass
        if request is not None:
            request.ended = time.monotonic()

    def _pump(self, source: socket.socket, sink: socket.socket, client: socket.socket) -> None:
        request: HungRequest | None = None
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if client in self._frozen:
                    continue  # half-open: nothing gets through, nothing is closed
                if self.mode == HANG:
                    if source is client and request is None:
                        request = HungRequest(time.monotonic())
                        self.hung_requests.append(request)
                    continue  # swallowed: the caller waits until its own timeout
                sink.sendall(data)
        except OSError:
            pass
        finally:
            if request is not None and request.ended is None:
                request.ended = time.monotonic()
            if client not in self._frozen:
                with contextlib.suppress(OSError):
                    sink.shutdown(socket.SHUT_WR)
