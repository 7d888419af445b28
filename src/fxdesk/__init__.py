"""fxdesk: live exchange rates, a shared task board and chat."""
