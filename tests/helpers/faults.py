"""A TCP proxy on 127.0.0.1 that a test can cut: a real service (PostgreSQL, S3) that "stops" for the code
under test (open connections reset, new ones refused) while the real server keeps running for the rest of
the suite, and comes back the same; and ``through_an_outage``, a command stopped at a failpoint while a part
goes away."""

from __future__ import annotations

import socket
import subprocess
import threading
from collections.abc import Callable, Sequence
from contextlib import suppress
from pathlib import Path
from types import TracebackType

from mloop.failpoints import ENV
from mloop.project import Project
from tests.helpers.cli import clean_env, mloop_argv
from tests.helpers.servers import background, wait_for

BUFFER = 65536


class CuttableProxy:
    """Forwards ``127.0.0.1:port`` to ``target``; ``cut()`` resets every connection and refuses new ones until
    ``restore()``."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._server.getsockname()[1])
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._cut = False
        self._closed = False
        self._thread = threading.Thread(target=self._accept, name="cuttable-proxy", daemon=True)
        self._thread.start()

    def __enter__(self) -> CuttableProxy:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def cut(self) -> None:
        with self._lock:
            self._cut = True
            for sock in self._open:
                with suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                    sock.close()  # with linger 0: a reset, as a server that died sends
            self._open.clear()

    def restore(self) -> None:
        with self._lock:
            self._cut = False

    def close(self) -> None:
        self._closed = True
        self.cut()
        with suppress(OSError):
            self._server.close()
        self._thread.join(5)

    def _accept(self) -> None:
        self._server.settimeout(0.2)
        while not self._closed:
            try:
                client, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                refused = self._cut
            if refused:
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._open.update((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(BUFFER):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                for sock in (source, sink):
                    self._open.discard(sock)
                    with suppress(OSError):
                        sock.close()


def through_an_outage(
    project: Project,
    point: str,
    args: Sequence[str],
    stop: Callable[[], None],
    tmp_path: Path,
    what: str,
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> str:
    """``mloop ARGS`` held at failpoint ``point`` while ``stop()`` takes ``what`` away, then let go; its
    stderr. It must fail cleanly: non-zero, an ``error:`` line, no traceback."""
    release = tmp_path / f"release-{point.replace(':', '-')}"
    reached = release.with_name(release.name + ".reached")  # written by mloop.failpoints on arrival
    full_env = clean_env(**{ENV: f"{point}=wait:{release}"}, **(env or {}))
    argv = mloop_argv(*args, project=project)
    with background(argv, env=full_env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as command:
        wait_for(lambda: reached.exists() or command.poll() is not None, f"`mloop {args[0]}` to reach {point}", 300)
        assert command.poll() is None, f"`mloop {args[0]}` ended before {point}: {command.communicate()}"
        stop()
        release.touch()
        _, stderr = command.communicate(timeout=180)
    text = stderr.decode(errors="replace")
    assert command.returncode != 0, f"`mloop {' '.join(args)}` succeeded with {what} down"
    assert "Traceback" not in text and "error:" in text, f"{text[:3000]}\n...\n{text[-1500:]}"
    return text
