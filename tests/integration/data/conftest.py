"""Real services for the data sources: a local HTTP server in a thread and the local PostgreSQL."""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from tests.helpers.servers import free_port

POSTGRES_URL = os.environ.get("MLOOP_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class names it so
        pass


@pytest.fixture(scope="module")
def http_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """A folder served by http.server on 127.0.0.1 and the base URL serving it."""
    root = tmp_path_factory.mktemp("http")
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    """The local PostgreSQL URL, with a fresh schema dropped afterwards; skipped outside CI if unreachable."""
    import sqlalchemy as sa

    url = POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://", 1)
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect():
            pass
    except sa.exc.OperationalError as exc:
        engine.dispose()
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"PostgreSQL at 127.0.0.1:5432 is unreachable ({type(exc.orig).__name__}); apt-get install it")
    schema = f"mloop_{uuid.uuid4().hex[:8]}"
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    yield schema
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
    engine.dispose()


S3_ACCESS_KEY, S3_SECRET_KEY = "MLOOPTESTKEY", "mloop-test-secret-key"  # a throwaway local server's keys


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An S3 endpoint on 127.0.0.1: Ceph's RADOS Gateway started for this module (about 20 s), with the
    test keys in the environment. MLOOP_TEST_S3_ENDPOINT uses a running server (and its AWS_* keys)."""
    if os.environ.get("MLOOP_TEST_S3_ENDPOINT"):
        yield os.environ["MLOOP_TEST_S3_ENDPOINT"]
        return
    missing = [b for b in ("radosgw", "ceph-mon", "ceph-osd", "ceph") if shutil.which(b) is None]
    if missing:
        pytest.skip(
            f"no S3 server: {', '.join(missing)} not installed (apt-get install radosgw ceph-mon ceph-osd ceph-common)"
        )
    # A fresh memstore OSD now and then fails to register ("wrong fsid"); a new cluster then starts fine.
    for attempt in range(3):
        folder = Path(tempfile.mkdtemp(prefix="rgw-", dir="/tmp"))  # short: Unix socket paths are limited
        port = free_port()
        started = subprocess.run(
            [
                "bash",
                str(Path(__file__).with_name("ceph_rgw.sh")),
                str(folder),
                str(port),
                S3_ACCESS_KEY,
                S3_SECRET_KEY,
            ],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        pids = [int(p.read_text().split()[0]) for p in (folder / "run").glob("*.pid")]
        if started.returncode == 0 and pids:
            break
        _stop(pids)
        shutil.rmtree(folder, ignore_errors=True)
        assert attempt < 2, f"Ceph RGW did not start:\n{started.stderr[-2000:]}"
    try:
        with pytest.MonkeyPatch.context() as env:
            env.setenv("AWS_ACCESS_KEY_ID", S3_ACCESS_KEY)
            env.setenv("AWS_SECRET_ACCESS_KEY", S3_SECRET_KEY)
            env.delenv("AWS_PROFILE", raising=False)
            yield f"http://127.0.0.1:{port}"
    finally:
        _stop(pids)
        shutil.rmtree(folder, ignore_errors=True)


def _stop(pids: list[int]) -> None:
    """Stop the daemons and wait until they are gone: a lingering OSD confuses the next cluster's monitor."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 20
    for pid in pids:
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.2)
        else:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
