"""Manual rates: figures an admin sets by hand, kept apart from CBR's tables and never used
for conversion. `schemas` holds their request and response shapes, `service` their storage and
events, `router` the /api/v1/rates/manual routes (mounted by `fxdesk.rates.router`)."""
