"""Imports every domain's tables so Base.metadata is complete for Alembic."""

from fxdesk.users.models import User

__all__ = ["User"]
