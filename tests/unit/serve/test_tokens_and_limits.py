"""Pieces of bearer-token auth, rate limits and TLS settings that need no server."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from mloop.config import ServeConfig
from mloop.errors import ServeError
from mloop.serve.main import tls_options
from mloop.serve.rate_limit import RateLimit
from mloop.serve.tokens import _scopes, looks_like_jwt


@pytest.mark.parametrize(
    ("claims", "scopes"),
    [
        ({"scope": "openid predict profile"}, {"predict"}),
        ({"scp": ["feedback", "admin", "other"]}, {"feedback", "admin"}),
        ({"scp": "predict feedback"}, {"predict", "feedback"}),
        ({"scope": 5, "scp": [1, None]}, set()),
        ({}, set()),
    ],
)
def test_token_scopes_are_the_mloop_scopes_it_names(claims: dict[str, Any], scopes: set[str]) -> None:
    assert _scopes(claims) == scopes


def test_only_compact_jws_is_taken_for_a_token() -> None:
    assert looks_like_jwt("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln")
    assert not looks_like_jwt("predict-key-with.dots.in") and not looks_like_jwt("plain-key")


def test_a_rate_limit_counts_each_caller_apart() -> None:
    async def run() -> tuple[list[int | None], int | None]:
        limit = RateLimit("3/minute")
        first = [await limit.retry_after("a") for _ in range(4)]
        return first, await limit.retry_after("b")

    first, other = asyncio.run(run())
    assert first[:3] == [None, None, None] and first[3] is not None and 1 <= first[3] <= 60
    assert other is None


def test_a_rate_limit_whose_storage_is_down_admits(caplog: pytest.LogCaptureFixture) -> None:
    limit = RateLimit("1/minute", "redis://127.0.0.1:1")  # nothing listens on port 1
    with caplog.at_level("ERROR"):
        assert asyncio.run(limit.retry_after("a")) is None
    assert "admitted unlimited" in caplog.text


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"rate_limit": "lots"}, "expected a rate such as"),
        ({"tls_keyfile": "k.pem"}, "tls_keyfile needs tls_certfile"),
        ({"tls_certfile": "c.pem"}, "tls_certfile needs tls_keyfile"),
        ({"jwt_jwks_url": "https://idp/jwks", "jwt_issuer": "https://idp"}, "needs jwt_issuer and jwt_audience"),
        ({"jwt_algorithms": ["HS256"]}, "asymmetric"),
        ({"jwt_algorithms": ["none"]}, "asymmetric"),
    ],
)
def test_serve_security_settings_are_checked(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ServeConfig(**settings)


def test_tls_options_resolve_paths_and_require_client_certificates_with_a_ca(tmp_path: Path) -> None:
    import ssl

    for name in ("c.pem", "k.pem", "ca.pem"):
        (tmp_path / name).write_text("x")
    assert tls_options(ServeConfig(), tmp_path) == {}
    options = tls_options(ServeConfig(tls_certfile="c.pem", tls_keyfile="k.pem", tls_ca_certs="ca.pem"), tmp_path)
    assert options["ssl_certfile"] == str(tmp_path / "c.pem") and options["ssl_cert_reqs"] == ssl.CERT_REQUIRED
    with pytest.raises(ServeError, match="serve.tls_keyfile"):
        tls_options(ServeConfig(tls_certfile="c.pem", tls_keyfile="missing.pem"), tmp_path)


def test_a_jwks_that_cannot_be_fetched_is_a_503_not_a_401() -> None:
    import jwt
    from cryptography.hazmat.primitives.asymmetric import rsa

    from mloop.errors import TokenServiceDown
    from mloop.serve.http import status_of
    from mloop.serve.tokens import TokenVerifier

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = jwt.encode({"sub": "a", "iss": "i", "aud": "a"}, key, algorithm="RS256", headers={"kid": "k"})
    verifier = TokenVerifier("http://127.0.0.1:1/jwks.json", "i", "a", ["RS256"])  # nothing listens on port 1
    with pytest.raises(TokenServiceDown) as error:
        verifier.principal(token)
    assert status_of(error.value) == 503 and "cannot fetch the JWKS" in str(error.value)
