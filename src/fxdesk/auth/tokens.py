"""Session tokens: HS256 JWTs with an explicit algorithm allowlist and required claims."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt

from fxdesk.errors import NotAuthenticated
from fxdesk.users.models import User

ALGORITHM = "HS256"
REQUIRED_CLAIMS = ["sub", "sid", "ver", "iat", "exp", "aud"]
# Tokens whose signature and claims were checked, kept so a session's every request does not
# verify it again (PyJWT takes about 100 µs a token, as much as the rest of a cached read).
VERIFIED_CACHE_SIZE = 4096
SESSION_ID_MAX = 32


@dataclass(frozen=True, slots=True)
class TokenClaims:
    user_id: int
    session_id: str
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

    def issue(self, user: User, session_id: str, expires_at: datetime) -> str:
        """A token for `user`'s server-side session `session_id` (see auth/sessions.py)."""
        claims = {
            "sub": str(user.id),
            "sid": session_id,
            "role": user.role.value,
            "ver": user.token_version,
            "iat": datetime.now(UTC),
            "exp": expires_at,
            "aud": self._audience,
        }
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def decode(self, token: str) -> TokenClaims:
        """The claims of a valid token, else NotAuthenticated. Revocation (the session row and
        the token version) is the caller's check against the database, on every request."""
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
            session_id = str(claims["sid"])
            if not 0 < len(session_id) <= SESSION_ID_MAX:
                raise ValueError("bad session id")
            version = int(claims["ver"])
            expires_at = datetime.fromtimestamp(int(claims["exp"]), UTC)
        except (jwt.PyJWTError, ValueError, TypeError, KeyError) as exc:
            raise NotAuthenticated("Invalid or expired session") from exc
        return TokenClaims(
            user_id=user_id, session_id=session_id, version=version, expires_at=expires_at
        )
