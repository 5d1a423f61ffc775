"""OIDC/JWT bearer tokens: verified against the provider's JWKS (PyJWT), mapped to mloop's scopes.

A token is accepted when its signature verifies with a key of ``serve.jwt_jwks_url`` (fetched and cached
by PyJWT's ``PyJWKClient``), with an accepted asymmetric algorithm, and it carries the configured ``iss``
and ``aud``, an ``exp`` in the future and a ``sub``. Its ``scope`` claim (space-separated, OAuth 2) or
``scp`` claim (a list or a string) grants the mloop scopes it names; others are ignored.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mloop.errors import TokenServiceDown, Unauthorized
from mloop.serve.security import SCOPES, Principal

if TYPE_CHECKING:
    from mloop.config import ServeConfig

LEEWAY_SECONDS = 30  # clock skew between the provider and this server
JWKS_CACHE_SECONDS = 300
JWKS_TIMEOUT_SECONDS = 5.0


def looks_like_jwt(token: str) -> bool:
    """A compact JWS (three base64url parts, the header starting ``{"``): anything else is an API key."""
    return token.count(".") == 2 and token.startswith("eyJ")


def _scopes(claims: dict[str, Any]) -> frozenset[str]:
    granted: list[str] = []
    for claim in ("scope", "scp"):
        value = claims.get(claim)
        if isinstance(value, str):
            granted += value.split()
        elif isinstance(value, list):
            granted += [v for v in value if isinstance(v, str)]
    return frozenset(granted) & SCOPES


class TokenVerifier:
    """Verifies bearer tokens of one provider; thread-safe (the JWKS fetch blocks, so call it off the loop)."""

    def __init__(self, jwks_url: str, issuer: str, audience: str, algorithms: list[str]) -> None:
        import jwt

        self.issuer, self.audience, self.algorithms = issuer, audience, list(algorithms)
        self._client = jwt.PyJWKClient(
            jwks_url, cache_keys=True, lifespan=JWKS_CACHE_SECONDS, timeout=JWKS_TIMEOUT_SECONDS
        )

    @classmethod
    def from_settings(cls, settings: ServeConfig) -> TokenVerifier | None:
        if not settings.jwt_jwks_url:
            return None
        assert settings.jwt_issuer and settings.jwt_audience  # noqa: S101 - ServeConfig requires both
        return cls(settings.jwt_jwks_url, settings.jwt_issuer, settings.jwt_audience, settings.jwt_algorithms)

    def principal(self, token: str) -> Principal:
        """The caller ``token`` names; ``Unauthorized`` saying why (never what it holds) when it does not
        verify, ``TokenServiceDown`` when the JWKS cannot be fetched."""
        import jwt

        try:
            key = self._client.get_signing_key_from_jwt(token)
        except jwt.PyJWKClientConnectionError as exc:
            raise TokenServiceDown(f"cannot fetch the JWKS to verify the token: {exc}") from None
        except (jwt.PyJWKClientError, jwt.DecodeError) as exc:
            raise Unauthorized(f"the token's signing key is not in the JWKS ({type(exc).__name__})") from None
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=self.algorithms,
                audience=self.audience,
                issuer=self.issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("the token has expired") from None
        except jwt.InvalidTokenError as exc:
            raise Unauthorized(f"the token is not valid: {exc}") from None
        return Principal(f"sub:{claims['sub']}", _scopes(claims))


__all__ = ["TokenVerifier", "looks_like_jwt"]
