"""Imports every domain's tables so Base.metadata is complete for Alembic."""

from fxdesk.events.models import Lease, OutboxEvent
from fxdesk.users.models import User

__all__ = ["Lease", "OutboxEvent", "User"]
