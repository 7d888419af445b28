"""Argon2id password hashing, always off the event loop and bounded to the machine's cores."""

from __future__ import annotations

import asyncio

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher


class Passwords:
    def __init__(self, concurrency: int) -> None:
        self._hasher = PasswordHash((Argon2Hasher(),))
        # Hashing is CPU- and memory-heavy; a queue of hashes must not starve other requests.
        self._slots = asyncio.Semaphore(concurrency)
        self._dummy_hash: str | None = None

    async def hash(self, password: str) -> str:
        async with self._slots:
            return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, password: str, password_hash: str) -> bool:
        async with self._slots:
            return await asyncio.to_thread(self._hasher.verify, password, password_hash)

    async def verify_nobody(self, password: str) -> None:
        """Spend the same time as a real check, so an unknown name is not revealed by timing."""
        if self._dummy_hash is None:
            self._dummy_hash = await self.hash("fxdesk-no-such-user-password")
        await self.verify(password, self._dummy_hash)
