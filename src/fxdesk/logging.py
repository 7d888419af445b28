"""The project logger: console or JSON lines, a request id on every line, secrets never written."""

from __future__ import annotations

import logging
import logging.handlers
import re
import sys
import traceback
from types import TracebackType
from typing import Any

import structlog
from structlog.typing import EventDict, Processor

from fxdesk.config import Settings
from fxdesk.ops.metrics import SECURITY_EVENTS

SENSITIVE_KEY = re.compile(r"passw|token|secret|cookie|authorization|api_?key", re.I)
REDACTED = "[redacted]"
# A traceback is written once, without locals, and bounded: the last frames of each exception
# in a chain, and at most this many characters in all (head and tail kept).
TRACEBACK_FRAMES = 20
TRACEBACK_MAX_CHARS = 8_000
_TRACEBACK_HEAD = 2_000


def _redact(_logger: Any, _method: str, event_dict: EventDict) -> EventDict:
    for key in list(event_dict):
        if key != "event" and SENSITIVE_KEY.search(key):
            event_dict[key] = REDACTED
    return event_dict


ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]


def _exc_info(value: object) -> ExcInfo | None:
    if value is True:
        value = sys.exc_info()
    if isinstance(value, BaseException):
        return type(value), value, value.__traceback__
    if isinstance(value, tuple) and len(value) == 3 and isinstance(value[1], BaseException):
        return value
    return None


def format_traceback(exc_info: ExcInfo) -> str:
    """The exception's last frames, without locals, cut to TRACEBACK_MAX_CHARS."""
    text = "".join(
        traceback.TracebackException(
            *exc_info, limit=-TRACEBACK_FRAMES, capture_locals=False
        ).format(chain=True)
    ).rstrip("\n")
    if len(text) > TRACEBACK_MAX_CHARS:
        cut = len(text) - TRACEBACK_MAX_CHARS
        tail = TRACEBACK_MAX_CHARS - _TRACEBACK_HEAD
        text = f"{text[:_TRACEBACK_HEAD]}\n... ({cut} characters cut) ...\n{text[-tail:]}"
    return text


def _bounded_exception(_logger: Any, _method: str, event_dict: EventDict) -> EventDict:
    """Render `exc_info` (ours or a library's) as one bounded `exception` string."""
    exc_info = _exc_info(event_dict.pop("exc_info", None))
    if exc_info is not None:
        event_dict["exception"] = format_traceback(exc_info)
    return event_dict


def _shared_processors() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact,
        _bounded_exception,
    ]


def configure_logging(settings: Settings) -> None:
    """Route structlog and the standard library (uvicorn, alembic) through one formatter."""
    renderer: Processor
    if settings.log_format == "json":
        renderer = structlog.processors.JSONRenderer()
    else:
        # Exceptions arrive already formatted (_bounded_exception); the plain formatter stands
        # in for the rich one, which would print every frame's locals.
        renderer = structlog.dev.ConsoleRenderer(
            colors=sys.stderr.isatty(), exception_formatter=structlog.dev.plain_traceback
        )

    shared = _shared_processors()
    structlog.configure(
        processors=[
            # First: a line below the level costs one check, not the whole chain.
            structlog.stdlib.filter_by_level,
            *shared,
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
