"""Live delivery: the per-instance WebSocket hub fed by the JetStream stream."""
