"""OIDC/JWT bearer tokens, per-caller rate limits and TLS, on a real server.

Tokens are signed here with a locally made RSA key whose JWKS a real HTTP server on 127.0.0.1 serves,
as an OIDC provider would; the certificate for TLS is made here too (self-signed for 127.0.0.1).
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import hmac
import ipaddress
import json
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import jwt
import pandas as pd
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from tests.helpers.brokers import require_port
from tests.helpers.cli import clean_env, mloop_argv
from tests.helpers.servers import free_port, run_server, started
from tests.helpers.traffic import as_records

from mloop.project import Project
from mloop.serve.rate_limit import RateLimit

pytestmark = pytest.mark.integration

ISSUER, AUDIENCE, KID = "https://issuer.test", "mloop-api", "test-key-1"


@pytest.fixture(scope="module")
def signing_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def jwks_url(signing_key: rsa.RSAPrivateKey) -> Iterator[str]:
    """A JWKS endpoint on 127.0.0.1 publishing the public half of ``signing_key``."""
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(signing_key.public_key()))
    body = json.dumps({"keys": [{**public, "kid": KID, "use": "sig", "alg": "RS256"}]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/jwks.json"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _token(key: Any, scope: str, *, algorithm: str = "RS256", kid: str = KID, **claims: Any) -> str:
    now = int(time.time())
    body = {"iss": ISSUER, "aud": AUDIENCE, "sub": "svc-a", "iat": now, "exp": now + 300, "scope": scope, **claims}
    return jwt.encode(body, key, algorithm=algorithm, headers={"kid": kid})


def _hs256(secret: bytes, claims: dict[str, Any]) -> str:
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    head = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": KID}).encode())
    body = b64(json.dumps(claims).encode())
    return f"{head}.{body}.{b64(hmac.new(secret, f'{head}.{body}'.encode(), hashlib.sha256).digest())}"


def test_tokens_signed_by_the_provider_are_accepted_with_their_scopes(
    project: Project,
    champion: Any,
    csv_rows: pd.DataFrame,
    tmp_path: Path,
    signing_key: rsa.RSAPrivateKey,
    jwks_url: str,
) -> None:
    env = {
        "MLOOP_SERVE__JWT_JWKS_URL": jwks_url,
        "MLOOP_SERVE__JWT_ISSUER": ISSUER,
        "MLOOP_SERVE__JWT_AUDIENCE": AUDIENCE,
        "MLOOP_SERVE__RELOAD_INTERVAL_SECONDS": "3600",
    }
    record = as_records(csv_rows.head(1), champion[1])[0]
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = signing_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    cases = {
        "predict": _token(signing_key, "openid predict"),
        "admin": _token(signing_key, "admin"),
        "scp list": _token(signing_key, "", scp=["predict", "feedback"]),
        "expired": _token(signing_key, "predict", exp=int(time.time()) - 3600),
        "other audience": _token(signing_key, "predict", aud="another-api"),
        "other issuer": _token(signing_key, "predict", iss="https://evil.test"),
        "no subject": jwt.encode(
            {"iss": ISSUER, "aud": AUDIENCE, "exp": int(time.time()) + 300, "scope": "predict"},
            signing_key,
            algorithm="RS256",
            headers={"kid": KID},
        ),
        "unknown key": _token(other_key, "predict", kid="not-published"),
        "forged with the same kid": _token(other_key, "predict"),
    }
    with run_server(project, tmp_path, env=env) as srv, srv.client() as http:

        def call(path: str, token: str) -> httpx.Response:
            body = record if path == "/v1/predict" else None
            return http.post(path, json=body, headers={"authorization": f"Bearer {token}"})

        answers = {name: call("/v1/predict", token) for name, token in cases.items()}
        admin_by_predict = call("/admin/reload", cases["predict"])
        admin = call("/admin/reload", cases["admin"])
        anonymous = http.post("/v1/predict", json=record)
        opens = http.get("/health").status_code
        log = srv.log()
        # alg confusion: an HS256 token whose HMAC secret is the provider's public key (made by hand: PyJWT
        # refuses to sign one) must not verify as if the public key were a shared secret
        claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "x", "exp": int(time.time()) + 60, "scope": "predict"}
        confused = call("/v1/predict", _hs256(public_pem, claims))

    assert answers["predict"].status_code == 200 and answers["scp list"].status_code == 200
    assert answers["admin"].status_code == 403  # an admin token is not a predict token
    assert admin_by_predict.status_code == 403 and "scope 'admin'" in admin_by_predict.json()["detail"]
    assert admin.status_code == 200
    assert answers["expired"].status_code == 401 and "expired" in answers["expired"].json()["detail"]
    for name in ("other audience", "other issuer", "no subject", "unknown key", "forged with the same kid"):
        assert answers[name].status_code == 401, (name, answers[name].text)
    assert anonymous.status_code == 401 and opens == 200
    assert confused.status_code == 401
    assert all(token not in log for token in cases.values())


def test_the_rate_limit_is_per_caller_and_answers_429_with_retry_after(
    project: Project, champion: Any, csv_rows: pd.DataFrame, tmp_path: Path
) -> None:
    env = {"MLOOP_API_KEYS": "predict:first-caller,predict:second-caller", "MLOOP_SERVE__RATE_LIMIT": "5/minute"}
    record = as_records(csv_rows.head(1), champion[1])[0]
    with run_server(project, tmp_path, env=env) as srv, srv.client() as http:
        first = [http.post("/v1/predict", json=record, headers={"x-api-key": "first-caller"}) for _ in range(6)]
        second = http.post("/v1/predict", json=record, headers={"x-api-key": "second-caller"})
        probes = [http.get("/ready").status_code for _ in range(10)]

    assert [r.status_code for r in first] == [200] * 5 + [429]
    refused = first[-1]
    assert 1 <= int(refused.headers["retry-after"]) <= 60 and "5/minute" in refused.json()["detail"]
    assert second.status_code == 200  # another key has its own budget
    assert probes == [200] * 10  # GETs (probes, scrapes) are not limited


def _self_signed(folder: Path) -> tuple[Path, Path]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "server.pem", folder / "server.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file


def test_mloop_serve_speaks_tls_with_the_configured_certificate(
    project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, key = _self_signed(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # what the start-up poll (httpx) trusts
    port = free_port()
    env = clean_env(MLOOP_SERVE__TLS_CERTFILE=str(cert), MLOOP_SERVE__TLS_KEYFILE=str(key), SSL_CERT_FILE=str(cert))
    argv = mloop_argv("serve", "--port", str(port), project=project)
    with started(argv, f"https://127.0.0.1:{port}", tmp_path / "tls.log", ready="/ready", env=env) as srv:
        secure = httpx.get(f"{srv.url}/ready", verify=ssl.create_default_context(cafile=str(cert)))
        with pytest.raises(httpx.HTTPError):  # plain HTTP on the TLS port gets no HTTP answer
            httpx.get(f"http://127.0.0.1:{port}/ready", timeout=5).raise_for_status()
        with pytest.raises(httpx.ConnectError):  # and a client that does not trust the certificate refuses it
            httpx.get(f"{srv.url}/ready", verify=True, trust_env=False)
    assert secure.status_code == 200 and secure.json()["status"] == "ready"


def test_a_missing_certificate_stops_the_server_naming_the_setting(project: Project, tmp_path: Path) -> None:
    env = clean_env(MLOOP_SERVE__TLS_CERTFILE=str(tmp_path / "nope.pem"), MLOOP_SERVE__TLS_KEYFILE=str(tmp_path / "k"))
    done = subprocess.run(
        mloop_argv("serve", "--port", str(free_port()), project=project), env=env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert done.returncode != 0 and "serve.tls_certfile" in done.stderr and "nope.pem" in done.stderr


def test_a_redis_rate_limit_is_one_budget_across_workers() -> None:
    """Two limiters (two worker processes, or replicas) on the same Redis share one count per caller."""
    require_port(("127.0.0.1", 6379), "Redis (apt-get install redis-server)")
    caller = f"test-{time.time_ns()}"

    async def run() -> list[int | None]:
        workers = [RateLimit("3/minute", "redis://127.0.0.1:6379/0") for _ in range(2)]
        try:
            return [await workers[i % 2].retry_after(caller) for i in range(4)]
        finally:
            for worker in workers:
                await worker.close()

    answers = asyncio.run(run())
    assert answers[:3] == [None, None, None] and answers[3] is not None
