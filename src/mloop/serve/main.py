"""Entry points of the inference server: a uvicorn app factory and ``serve``.

``uvicorn mloop.serve.main:create_app_from_env --factory`` builds the app of the project whose
``mloop.yaml`` is named by ``MLOOP_CONFIG`` (default ``./mloop.yaml``); every worker process calls
the factory, so config is read in the worker, never at import time.
"""

from __future__ import annotations

import inspect
import logging
import os
import socket
import ssl
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI

from mloop.errors import ServeError
from mloop.project import Project
from mloop.serve.app import create_app

if TYPE_CHECKING:
    from mloop.config import ServeConfig

CONFIG_ENV = "MLOOP_CONFIG"
FACTORY = "mloop.serve.main:create_app_from_env"
# One OpenMP thread per process: the service runs many small predictions concurrently, and thread
# pools per prediction only contend with each other (measured faster under load).
# (mloop.serve.model_holder also applies it per worker thread, however the server was started.)
OMP_THREADS_ENV = "OMP_NUM_THREADS"
SAGEMAKER_PORT_ENV = "SAGEMAKER_BIND_TO_PORT"
WORKER_STARTUP_SECONDS = 180


def resolve_port(port: int) -> int:
    """SageMaker tells a container its port in ``SAGEMAKER_BIND_TO_PORT``; it wins over config and flags."""
    value = os.environ.get(SAGEMAKER_PORT_ENV, "").strip()
    if not value:
        return port
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise ServeError(f"{SAGEMAKER_PORT_ENV}={value!r} is not a port number (1-65535)")
    return int(value)


def _configure_logging() -> None:
    """mloop's INFO lines (model loaded, swapped) in the server's output, formatted like uvicorn's."""
    logger = logging.getLogger("mloop")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s:     [%(name)s] %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


def create_app_from_env() -> FastAPI:
    """The app of the project named by ``$MLOOP_CONFIG`` (default ``./mloop.yaml``); a uvicorn factory."""
    _configure_logging()
    return create_app(Project.load(os.environ.get(CONFIG_ENV, "mloop.yaml")))


def serve(config_path: Path, host: str = "127.0.0.1", port: int = 8000, workers: int = 1) -> None:
    """Run the inference server of the project at ``config_path`` until interrupted.

    Binds 127.0.0.1 unless told otherwise, so a model is never exposed by accident. With
    ``workers > 1`` each worker is a separate process with its own model copy and its own Prometheus
    counters: ``/metrics`` shows the worker that answered the scrape, not the sum (multiprocess
    collection is not implemented). They share the prediction log, which SQLite's WAL mode allows.
    """
    import uvicorn

    path = Path(config_path).resolve()
    settings = Project.load(path).config.serve  # a broken config fails here, before any worker starts
    tls = tls_options(settings, path.parent)
    os.environ[CONFIG_ENV] = str(path)
    os.environ.setdefault(OMP_THREADS_ENV, "1")
    config = uvicorn.Config(
        FACTORY,
        factory=True,
        host=host,
        port=resolve_port(port),
        workers=workers,
        log_level="info",
        access_log=settings.access_log,
        # A worker imports the whole stack and loads (and verifies) the model before it answers the
        # supervisor's ping: uvicorn's 5 s default restarts it forever on a busy machine.
        timeout_worker_healthcheck=WORKER_STARTUP_SECONDS,
        **tls,
    )
    run_uvicorn(config)


def tls_options(settings: ServeConfig, root: Path) -> dict[str, Any]:
    """uvicorn's TLS arguments from serve.tls_* (paths relative to mloop.yaml's folder); {} without TLS.
    A file that is missing fails here, naming the setting, rather than as an ssl traceback in a worker."""
    if not settings.tls_certfile:
        return {}
    options: dict[str, Any] = {}
    for setting, argument in (
        ("tls_certfile", "ssl_certfile"),
        ("tls_keyfile", "ssl_keyfile"),
        ("tls_ca_certs", "ssl_ca_certs"),
    ):
        value = getattr(settings, setting)
        if value is None:
            continue
        file = Path(value) if Path(value).is_absolute() else root / value
        if not file.is_file():
            raise ServeError(f"serve.{setting}: {file} is not a file")
        options[argument] = str(file)
    if "ssl_ca_certs" in options:
        options["ssl_cert_reqs"] = ssl.CERT_REQUIRED  # mutual TLS: a client without a certificate is refused
    return options


def tcp_socket(sock: socket.socket) -> socket.socket:
    """The same listening socket, declared as TCP, so asyncio sets TCP_NODELAY on what it accepts.

    uvicorn's ``Config.bind_socket`` (used with several workers) creates the socket with protocol 0;
    accepted connections inherit it, and asyncio only disables Nagle's algorithm on sockets whose
    protocol is ``IPPROTO_TCP``. Every answer on a kept-alive connection then waits for the client's
    delayed ACK: about 40 ms on Linux (uvicorn issue #3149; measured here: 44 ms p50 for a constant
    endpoint with two workers, 2.4 ms with one). Re-wrapping the descriptor fixes the declaration.
    """
    if sock.family not in (socket.AF_INET, socket.AF_INET6) or sock.proto == socket.IPPROTO_TCP:
        return sock
    fixed = socket.socket(sock.family, sock.type, socket.IPPROTO_TCP, fileno=sock.detach())
    fixed.set_inheritable(True)
    return fixed


def run_uvicorn(config: Any) -> None:
    """``uvicorn.run`` for a ``uvicorn.Config``, with several workers on a socket that keeps TCP_NODELAY."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    server = uvicorn.Server(config=config)
    if config.workers <= 1:
        server.run()
        if not server.started:
            raise SystemExit(3)  # uvicorn's STARTUP_FAILURE: the log above says why
        return
    sock = tcp_socket(config.bind_socket())
    try:
        supervisor: Any = Multiprocess
        if "target" in inspect.signature(supervisor).parameters:  # older uvicorn takes the server's run
            supervisor(config, target=server.run, sockets=[sock]).run()
        else:
            supervisor(config, sockets=[sock]).run()
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()


__all__ = ["create_app_from_env", "resolve_port", "run_uvicorn", "serve", "tcp_socket", "tls_options"]
