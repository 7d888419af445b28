"""Prometheus metrics of the process; each domain adds its own beside these."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

HTTP_REQUESTS = Counter(
    "fxdesk_http_requests_total", "HTTP requests answered", ["method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "fxdesk_http_request_duration_seconds",
    "Time to answer an HTTP request",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
SECURITY_EVENTS = Counter(
    "fxdesk_security_events_total", "Logins, refusals and rate limits", ["event"]
)

OUTBOX_BACKLOG = Gauge("fxdesk_outbox_backlog", "Events committed but not yet published")
EVENTS_PUBLISHED = Counter("fxdesk_events_published_total", "Events published to JetStream")
EVENTS_DELIVERED = Counter(
    "fxdesk_events_delivered_total", "Events queued to WebSocket clients of this instance"
)
EVENTS_INVALID = Counter("fxdesk_events_invalid_total", "NATS messages dropped as invalid")
WS_CONNECTIONS = Gauge("fxdesk_ws_connections", "Open WebSocket connections")
WS_REPLAYS = Counter("fxdesk_ws_replays_total", "Events replayed to resuming clients")
WS_RESYNCS = Counter("fxdesk_ws_resyncs_total", "Clients told to resync (asked for too old a seq)")
WS_SLOW_DISCONNECTS = Counter(
    "fxdesk_ws_slow_disconnects_total", "Clients disconnected for not keeping up"
)
NATS_RECONNECTS = Counter("fxdesk_nats_reconnects_total", "Reconnections to NATS")
CONSUMER_RECOVERIES = Counter(
    "fxdesk_event_consumer_recoveries_total", "Stream consumers re-created after they died"
)
NATS_RESTARTS = Counter(
    "fxdesk_nats_restarts_total", "Restarts of the embedded nats-server after it died"
)
