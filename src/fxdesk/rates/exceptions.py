"""Rates errors, each with the HTTP status it is answered with."""

from __future__ import annotations

from fxdesk.errors import AppError, Conflict, NotFound, ServiceUnavailable


class RateNotFound(NotFound):
    detail = "Rate not found"


class CurrencyNotFound(NotFound):
    detail = "Currency not found"


class NoRatesYet(ServiceUnavailable):
    detail = "No CBR rate table is stored yet; the first fetch has not succeeded"


class FetchBusy(Conflict):
    detail = "Another fxdesk instance is fetching the rates right now; try again in a minute"


class FetchFailed(ServiceUnavailable):
    detail = "The CBR rates could not be fetched"


class BadGateway(AppError):
    status_code = 502
    detail = "The upstream rates provider failed"
