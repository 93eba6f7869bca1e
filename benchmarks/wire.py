"""Round trips to PostgreSQL counted on the wire, not in Django's query log.

A loopback TCP proxy between a client and the server that reads the server's side of the
protocol and counts ReadyForQuery messages ('Z'): the server sends exactly one at the end
of each simple query ('Q': BEGIN, COMMIT, SET ...) and each extended-protocol Sync (psycopg's
parameterised statements), that is once per time the client waits for the server. Django's
query log misses the BEGIN and COMMIT that ``atomic()`` costs; this does not.
"""

from __future__ import annotations

import socket
import struct
import threading


class RoundTripCounter:
    """``with RoundTripCounter(host, port) as proxy``: connect to ``proxy.port`` on 127.0.0.1
    (with ``sslmode=disable``); ``proxy.round_trips`` counts as the conversation goes."""

    def __init__(self, host: str, port: int) -> None:
        self.upstream = (host, port)
        self.round_trips = 0
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]

    def __enter__(self) -> RoundTripCounter:
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            threading.Thread(target=self._pipe, args=(client, server, False), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client, True), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, from_server: bool) -> None:
        pending = b""
        try:
            while chunk := source.recv(65536):
                sink.sendall(chunk)
                if from_server:
                    pending = self._count(pending + chunk)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def _count(self, data: bytes) -> bytes:
        """Count the whole 'Z' messages in ``data``; return the incomplete tail."""
        offset = 0
        found = 0
        while len(data) - offset >= 5:
            kind = data[offset : offset + 1]
            (length,) = struct.unpack("!I", data[offset + 1 : offset + 5])
            if len(data) - offset < 1 + length:
                break
            found += kind == b"Z"
            offset += 1 + length
        if found:
            with self._lock:
                self.round_trips += found
        return data[offset:]
