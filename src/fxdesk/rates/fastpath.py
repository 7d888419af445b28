"""The two hottest reads, answered before routing when memory holds what they need.

`GET /api/v1/rates/latest` (default base) is bytes encoded once per table change, and so is a
`GET /api/v1/convert` with today's table once it has been asked. Routing them through FastAPI
(every route tried in order, then dependency solving) cost three times what answering does,
more than a bare FastAPI endpoint serialising the same body. So the outer middleware hands
these two paths to the functions below first. They answer only the success case, with the same
session check as `CurrentUser` and the same code as the routes (`answer_conversion`), and the
body with its ETag (304 on a match). Anything else (no or a bad session, another base, an old
date or APILayer, any refusal, no table yet) returns None and the request goes on to the
FastAPI route, which gives the usual answer or error and is what OpenAPI documents.
"""

from __future__ import annotations

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError

from fxdesk.auth.dependencies import authenticate_token, credential_from
from fxdesk.errors import AppError
from fxdesk.ops.middleware import FastRead
from fxdesk.rates.cache import RatesCache
from fxdesk.rates.conversion import BASE_CODE
from fxdesk.rates.converter import answer_conversion
from fxdesk.rates.dependencies import etag_response, parse_query
from fxdesk.rates.runtime import RatesRuntime
from fxdesk.rates.schemas import ConvertQuery
from fxdesk.users.models import User


async def _signed_in(request: Request) -> User | None:
    """The request's user when its session checks out (as `CurrentUser` would), else None."""
    credential = credential_from(request.headers.get("authorization"), request.cookies)
    if credential is None:
        return None
    state = request.app.state
    try:
        auth = await authenticate_token(
            state.user_lookup, state.tokens, credential.token, fresh=False
        )
        return auth.user
    except AppError:
        return None


async def latest(request: Request) -> Response | None:
    if request.scope["query_string"]:
        return None  # another base: the route validates and answers it
    cache: RatesCache = request.app.state.rates.cache
    snapshot = cache.snapshot
    # Not encoded yet (or no table in force): the route does that once.
    encoded = None if snapshot is None else cache.encoded_latest(snapshot, BASE_CODE)
    if encoded is None or await _signed_in(request) is None:
        return None
    return etag_response(request, encoded)


async def convert(request: Request) -> Response | None:
    rates: RatesRuntime = request.app.state.rates
    snapshot = rates.cache.snapshot
    if snapshot is None:
        return None
    query_string: bytes = request.scope["query_string"]
    encoded = rates.cache.encoded_conversion(snapshot, query_string)
    if encoded is None:
        # A new question with today's table is computed here too; any other (an old date,
        # APILayer) or any refusal is the route's to answer.
        try:
            query = parse_query(ConvertQuery, request)
        except RequestValidationError:
            return None
        if query.date is not None or query.provider != "cbr":
            return None
        if await _signed_in(request) is None:
            return None
        try:
            encoded = await answer_conversion(rates, query_string, query)
        except AppError:
            return None
    elif await _signed_in(request) is None:
        return None
    return etag_response(request, encoded)


FAST_READS: dict[str, FastRead] = {"/api/v1/rates/latest": latest, "/api/v1/convert": convert}
