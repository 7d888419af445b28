"""Bank of Russia (cbr.ru) feed: the HTTP client and the parsers of what it serves.

`records` holds what the parsers return (and CbrError), `fields` the checks every parser
shares, `daily`, `dynamic`, `valfull` and `mirror` one parser each, `client` the fetching,
and `configured` the client as the app's settings set it up.
"""
