"""Read a table from an object store (``s3://bucket/key.csv``) through fsspec.

Credentials come only from the environment (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` or a
profile), never from mloop.yaml; the endpoint (an S3-compatible server such as Ceph or MinIO) may be
set there as ``data.s3_endpoint_url``.
"""

from __future__ import annotations

import importlib
from typing import Any

import pandas as pd

from mloop.data.formats import kind_of
from mloop.data.http import parse_or_explain
from mloop.errors import SourceError

OBJECT_SCHEMES = ("s3", "s3a", "gs", "gcs", "az", "abfs")
# What to install for each scheme: mloop's s3 extra, or the fsspec implementation (no extra of mloop has it).
_S3, _GCS, _AZURE = ("s3fs", "pip install 'mloop[s3]'"), ("gcsfs", "pip install gcsfs"), ("adlfs", "pip install adlfs")
_INSTALL = {"s3": _S3, "s3a": _S3, "gs": _GCS, "gcs": _GCS, "az": _AZURE, "abfs": _AZURE}


def read_object(uri: str, endpoint_url: str | None = None) -> pd.DataFrame:
    """Download ``uri`` and parse it by its suffix; failures name the object, never a credential."""
    scheme = uri.split("://", 1)[0].lower()
    try:
        fsspec: Any = importlib.import_module("fsspec")
        # a fresh client each time: fsspec's cache would keep credentials after the environment changed
        options: dict[str, Any] = {"skip_instance_cache": True}
        if scheme in ("s3", "s3a"):
            importlib.import_module("s3fs")
            if endpoint_url:
                options["client_kwargs"] = {"endpoint_url": endpoint_url}
        fs, path = fsspec.core.url_to_fs(uri, **options)
    except ImportError as exc:
        package, install = _INSTALL[scheme]
        # fsspec names no module when an implementation is missing, so the package is named instead
        raise SourceError(f"{uri}: reading {scheme}:// needs {exc.name or package}: {install}.") from None
    where = f"{uri}" + (f" at {endpoint_url}" if endpoint_url else "")
    try:
        with fs.open(path, "rb") as handle:
            body = handle.read()
    except FileNotFoundError:
        raise SourceError(f"{where}: no such object (or bucket). Check data.source in mloop.yaml.") from None
    except PermissionError:
        raise SourceError(
            f"{where}: access denied; check the credentials in AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY."
        ) from None
    except Exception as exc:  # noqa: BLE001 - botocore and aiohttp raise many types; each becomes one message
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SourceError(f"{where}: cannot read the object ({type(exc).__name__}: {first}).") from None
    if isinstance(body, str):
        body = body.encode()
    return parse_or_explain(bytes(body), path, kind_of(path), uri)
