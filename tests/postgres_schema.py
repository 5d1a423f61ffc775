"""The local PostgreSQL for tests (127.0.0.1:5432, trust auth, db ``test``): a fresh schema for one test, dropped
after, and a TCP relay to it that a test stops and starts to take the database away and bring it back.

Unreachable on a laptop: the test is skipped with the reason; on CI (``CI=true``) it fails instead.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from tests.helpers.servers import free_port

POSTGRES_URL = os.environ.get("MLOOP_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


def admin_connection() -> Any:
    """An autocommit connection to the test database, or a skip (never on CI) when there is none."""
    import psycopg

    try:
        return psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"PostgreSQL at {POSTGRES_URL.rsplit('@', 1)[-1]} is unreachable ({exc}); apt-get install it")


def url_with_schema(url: str, schema: str) -> str:
    """``url`` with the schema first on the search path: unqualified tables are created and read there."""
    return f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"


@contextmanager
def fresh_schema() -> Iterator[tuple[str, str]]:
    """(URL whose tables live in a new empty schema, the schema's name); the schema is dropped afterwards."""
    schema = f"mloop_test_{uuid.uuid4().hex[:10]}"
    with admin_connection() as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
        try:
            yield url_with_schema(POSTGRES_URL, schema), schema
        finally:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


class Relay:
    """A TCP relay on 127.0.0.1 to the local PostgreSQL: ``stop`` cuts every connection and refuses new ones,
    as a database that went down does; ``start`` brings it back on the same port."""

    def url(self, schema: str) -> str:
        """The test database through this relay, its tables in ``schema``."""
        user = POSTGRES_URL.split("://", 1)[1].split("@", 1)[0]
        database = POSTGRES_URL.rsplit("/", 1)[1].split("?", 1)[0]
        return url_with_schema(f"postgresql://{user}@127.0.0.1:{self.port}/{database}", schema)

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()
        self._frozen = threading.Event()

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def stop(self) -> None:
        if self._listener is not None:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept(); close() alone does not
            self._listener.close()
            self._listener = None
        with self._lock:
            for sock in self._open:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()
            self._open.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:  # stopped
                return
            server = socket.create_connection(self.upstream, timeout=5)
            server.settimeout(None)
            with self._lock:
                self._open += [client, server]
            threading.Thread(target=self._pump, args=(client, server), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client), daemon=True).start()

    def freeze(self, frozen: bool = True) -> None:
        """Hold every byte in both directions, connections left open: a server that stopped answering."""
        if frozen:
            self._frozen.set()
        else:
            self._frozen.clear()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                while self._frozen.is_set():
                    time.sleep(0.01)
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


@contextmanager
def postgres_relay() -> Iterator[Relay]:
    """A started ``Relay`` to the test database (a skip, never on CI, when there is no PostgreSQL)."""
    admin_connection().close()
    host_port = POSTGRES_URL.split("@", 1)[-1].split("/", 1)[0]
    host, _, port = host_port.partition(":")
    relay = Relay((host or "127.0.0.1", int(port or 5432)))
    relay.start()
    try:
        yield relay
    finally:
        relay.stop()
