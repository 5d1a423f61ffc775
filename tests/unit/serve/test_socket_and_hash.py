"""The multi-worker socket keeps TCP_NODELAY; the artifact hash covers every model file and only those."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import uvicorn

from mloop.registry.versions import artifact_sha256
from mloop.serve.main import tcp_socket


def test_the_multi_worker_socket_gives_accepted_connections_tcp_nodelay() -> None:
    """mloop's outcome on every uvicorn version: what the workers accept has Nagle's algorithm off.

    Older uvicorn binds the shared socket with protocol 0 (asyncio then leaves Nagle on), newer ones
    declare it TCP; ``tcp_socket`` must give the same answer either way.
    """
    config = uvicorn.Config("mloop.serve.main:create_app_from_env", host="127.0.0.1", port=0, workers=2)
    sock = tcp_socket(config.bind_socket())
    with sock:
        assert sock.proto == socket.IPPROTO_TCP and sock.get_inheritable()
        port = sock.getsockname()[1]

        async def accepted_nodelay() -> int:
            seen: asyncio.Future[int] = asyncio.get_running_loop().create_future()

            class Probe(asyncio.Protocol):
                def connection_made(self, transport: asyncio.BaseTransport) -> None:
                    accepted = transport.get_extra_info("socket")
                    seen.set_result(accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
                    transport.close()

            server = await asyncio.get_running_loop().create_server(Probe, sock=sock)
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                try:
                    return await asyncio.wait_for(seen, 10)
                finally:
                    writer.close()
                    await writer.wait_closed()
            finally:
                server.close()
                await server.wait_closed()

        assert asyncio.run(accepted_nodelay()) == 1


def test_a_protocol_0_tcp_socket_is_redeclared() -> None:
    """The old-uvicorn case, built by hand so it is covered whatever uvicorn is installed."""
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM, 0)
    raw.bind(("127.0.0.1", 0))
    with tcp_socket(raw) as fixed:
        assert fixed.proto == socket.IPPROTO_TCP and fixed.get_inheritable()
    raw.close()


def test_a_non_tcp_socket_is_left_alone() -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        assert tcp_socket(sock) is sock


def _model(root: Path) -> Path:
    (root / "sub").mkdir(parents=True)
    (root / "MLmodel").write_text("flavors: {}\n")
    (root / "model.pkl").write_bytes(b"\x80\x04pickle bytes")
    (root / "sub" / "extra.txt").write_text("x")
    return root


def test_the_artifact_hash_changes_with_any_file_and_ignores_mlflows_download_note(tmp_path: Path) -> None:
    model = _model(tmp_path / "a")
    original = artifact_sha256(model)
    assert artifact_sha256(_model(tmp_path / "b")) == original  # the same files hash the same anywhere
    (model / "registered_model_meta").write_text("model_name: x\nmodel_version: 7\n")  # written by downloads
    assert artifact_sha256(model) == original
    (model / "model.pkl").write_bytes(b"\x80\x04pickle bytes" + b"\x00")  # one byte appended
    assert artifact_sha256(model) != original
    (model / "model.pkl").write_bytes(b"\x80\x04pickle bytes")
    assert artifact_sha256(model) == original
    (model / "sub" / "extra.txt").rename(model / "sub" / "other.txt")  # same bytes, another name
    assert artifact_sha256(model) != original
    (model / "sub" / "other.txt").rename(model / "sub" / "extra.txt")
    (model / "new.py").write_text("import os\n")  # an added file
    assert artifact_sha256(model) != original


def test_the_artifact_hash_ignores_where_mlmodel_says_the_files_were_but_not_what_loads_them(tmp_path: Path) -> None:
    model = _model(tmp_path / "a")
    (model / "MLmodel").write_text("artifact_path: file:///old/root/artifacts\nflavors:\n  sklearn: {}\n")
    original = artifact_sha256(model)
    # A project moved or baked into an image: only the stored location changes.
    (model / "MLmodel").write_text("artifact_path: file:///app/project/artifacts\nflavors:\n  sklearn: {}\n")
    assert artifact_sha256(model) == original
    (model / "MLmodel").write_text("artifact_path: file:///app/project/artifacts\nflavors:\n  evil: {}\n")
    assert artifact_sha256(model) != original
    nested = "artifact_path: file:///x\nflavors:\n  sklearn: {}\nsaved_input_example_info:\n  artifact_path: a.json\n"
    (model / "MLmodel").write_text(nested)
    changed = nested.replace("a.json", "b.json")  # an indented artifact_path is content, still hashed
    before = artifact_sha256(model)
    (model / "MLmodel").write_text(changed)
    assert artifact_sha256(model) != before
