"""The project logger: console or JSON lines, a request id on every line, secrets never written."""

from __future__ import annotations

import logging
import logging.handlers
import re
import sys
from typing import Any

import structlog
from structlog.typing import EventDict, Processor

from fxdesk.config import Settings
from fxdesk.ops.metrics import SECURITY_EVENTS

SENSITIVE_KEY = re.compile(r"passw|token|secret|cookie|authorization|api_?key", re.I)
REDACTED = "[redacted]"


def _redact(_logger: Any, _method: str, event_dict: EventDict) -> EventDict:
    for key in list(event_dict):
        if key != "event" and SENSITIVE_KEY.search(key):
            event_dict[key] = REDACTED
    return event_dict


def _shared_processors() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact,
    ]


def configure_logging(settings: Settings) -> None:
    """Route structlog and the standard library (uvicorn, alembic) through one formatter."""
    renderer: Processor
    if settings.log_format == "json":
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())

    shared = _shared_processors()
    structlog.configure(
        processors=[
            # First: a line below the level costs one check, not the whole chain.
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.processors.format_exc_info,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if settings.log_file:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        handlers.append(
            logging.handlers.RotatingFileHandler(
                settings.data_dir / "fxdesk.log", maxBytes=10_000_000, backupCount=5
            )
        )
    root = logging.getLogger()
    root.handlers.clear()
    for handler in handlers:
        handler.setFormatter(formatter)
        root.addHandler(handler)
    root.setLevel(settings.log_level)
    # Our middleware writes the access line; uvicorn's own would duplicate it.
    logging.getLogger("uvicorn.access").disabled = True
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name)
    return logger


_security = get_logger("fxdesk.security")


def security_event(name: str, **fields: Any) -> None:
    """Log a security-relevant event (login, refusal, rate limit) under one logger."""
    SECURITY_EVENTS.labels(name).inc()
    _security.warning(name, security=True, **fields)
