"""The web page: a static dashboard served by fxdesk itself at `/` (no build step, no CDN)."""
