"""Imports every domain's tables so Base.metadata is complete for Alembic."""

from fxdesk.auth.models import LimitHit
from fxdesk.chat.models import ChatMessage
from fxdesk.events.models import Counter, Lease, OutboxEvent
from fxdesk.rates.models import Currency, FetchLog, ManualRate, Rate, RateRevision  # noqa: F401
from fxdesk.tasks.models import Task, TaskHistory
from fxdesk.users.models import User

__all__ = [
    "ChatMessage",
    "Counter",
    "Lease",
    "LimitHit",
    "OutboxEvent",
    "Task",
    "TaskHistory",
    "User",
]
