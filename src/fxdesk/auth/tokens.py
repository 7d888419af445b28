"""Session tokens: HS256 JWTs with an explicit algorithm allowlist and required claims."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt

from fxdesk.errors import NotAuthenticated
from fxdesk.users.models import User

ALGORITHM = "HS256"
REQUIRED_CLAIMS = ["sub", "ver", "iat", "exp", "aud"]
# Tokens whose signature and claims were checked, kept so a session's every request does not
# verify it again (PyJWT takes about 100 µs a token, as much as the rest of a cached read).
VERIFIED_CACHE_SIZE = 4096


@dataclass(frozen=True, slots=True)
class TokenClaims:
    user_id: int
    version: int
    expires_at: datetime


class TokenCodec:
    def __init__(self, secret: str, audience: str, lifetime_seconds: int) -> None:
        self._secret = secret
        self._audience = audience
        self.lifetime = timedelta(seconds=lifetime_seconds)
        # token -> (claims, expiry as a Unix time). The key is the whole token, signature
        # included, so only a token that passed verification can ever be found here.
        self._verified: dict[str, tuple[TokenClaims, float]] = {}

    def issue(self, user: User) -> tuple[str, datetime]:
        now = datetime.now(UTC)
        expires_at = now + self.lifetime
        claims = {
            "sub": str(user.id),
            "role": user.role.value,
            "ver": user.token_version,
            "iat": now,
            "exp": expires_at,
            "aud": self._audience,
        }
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM), expires_at

    def decode(self, token: str) -> TokenClaims:
        """The claims of a valid token, else NotAuthenticated. Revocation (the token version)
        is the caller's check against the database, on every request."""
        hit = self._verified.get(token)
        if hit is not None:
            claims, expires = hit
            if time.time() < expires:
                return claims
            del self._verified[token]
        claims = self._verify(token)
        if len(self._verified) >= VERIFIED_CACHE_SIZE:
            self._verified.clear()  # rare: a fresh start costs one verification per session
        self._verified[token] = (claims, claims.expires_at.timestamp())
        return claims

    def _verify(self, token: str) -> TokenClaims:
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                audience=self._audience,
                options={"require": REQUIRED_CLAIMS},
            )
            user_id = int(claims["sub"])
            version = int(claims["ver"])
            expires_at = datetime.fromtimestamp(int(claims["exp"]), UTC)
        except (jwt.PyJWTError, ValueError, TypeError, KeyError) as exc:
            raise NotAuthenticated("Invalid or expired session") from exc
        return TokenClaims(user_id=user_id, version=version, expires_at=expires_at)
