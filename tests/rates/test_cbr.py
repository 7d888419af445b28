"""CBR parsers and client against the real recorded responses in shared/fixtures/cbr."""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import re
from collections.abc import Callable
from decimal import Context, Decimal
from typing import Any

import httpx
import pytest

from fxdesk.rates.cbr.client import USER_AGENT, CbrClient
from fxdesk.rates.cbr.daily import english_names, parse_daily
from fxdesk.rates.cbr.dynamic import parse_dynamic
from fxdesk.rates.cbr.fields import parse_decimal
from fxdesk.rates.cbr.mirror import parse_mirror_json
from fxdesk.rates.cbr.records import CbrError, CbrTable
from fxdesk.rates.cbr.valfull import parse_valfull
from tests.rates.conftest import fixtures_dir

HIGH = Context(prec=34)

FIXTURES = fixtures_dir()
if not FIXTURES.is_dir():  # fail, never skip: these tests are the proof the parsers work
    raise RuntimeError(f"CBR fixtures not found at {FIXTURES}; set FXDESK_FIXTURES_DIR")


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


DAILY_0425 = "XML_daily_2026-04-25.xml"
DAILY_0319 = "XML_daily_2026-03-19.xml"
DAILY_2022 = "XML_daily_2022-03-15.xml"
DAILY_2017 = "XML_daily_2017-12-06.xml"
DYN_HKD = "XML_dynamic_R01200_2026-03-01_2026-03-19.xml"
DYN_USD = "XML_dynamic_R01235_2026-03-01_2026-03-19.xml"
VALFULL = "XML_valFull_d0_asof-2021-09-25.xml"
JSON_2019 = "daily_json_2019-12-17.js"
JSON_2021 = "daily_json_2021-12-31.js"

# Every file in the fixtures folder: (kind, number of rows, date it carries).
EXPECTED: dict[str, tuple[str, int, dt.date | None]] = {
    DAILY_0425: ("daily", 54, dt.date(2026, 4, 25)),
    DAILY_0319: ("daily", 54, dt.date(2026, 3, 19)),
    DAILY_2022: ("daily", 34, dt.date(2022, 3, 15)),
    DAILY_2017: ("daily", 34, dt.date(2017, 12, 6)),
    DYN_HKD: ("dynamic", 12, None),
    DYN_USD: ("dynamic", 12, None),
    VALFULL: ("valfull", 61, None),
    JSON_2019: ("mirror", 34, dt.date(2019, 12, 17)),
    JSON_2021: ("mirror", 34, dt.date(2021, 12, 31)),
}
TABLE_PARSERS: dict[str, Callable[[bytes], CbrTable]] = {
    "daily": parse_daily,
    "mirror": parse_mirror_json,
}
TABLES = [name for name, (kind, _, _) in EXPECTED.items() if kind in TABLE_PARSERS]


def table(name: str) -> CbrTable:
    return TABLE_PARSERS[EXPECTED[name][0]](fixture(name))


# --- the fixture set itself ----------------------------------------------------------------


def test_every_fixture_file_is_covered() -> None:
    present = {path.name for path in FIXTURES.iterdir() if path.name != "SOURCES.md"}
    assert present == set(EXPECTED)


def test_fixtures_match_sources_md() -> None:
    rows = re.findall(
        r"^\| `([^`]+)` \| (\d+) \| ([0-9a-f]{12}) \|",
        (FIXTURES / "SOURCES.md").read_text(encoding="utf-8"),
        flags=re.MULTILINE,
    )
    assert {name for name, _, _ in rows} == set(EXPECTED)
    for name, size, sha_prefix in rows:
        body = fixture(name)
        assert len(body) == int(size), name
        assert hashlib.sha256(body).hexdigest().startswith(sha_prefix), name


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_fixture_parses(name: str) -> None:
    kind, count, date = EXPECTED[name]
    body = fixture(name)
    if kind in TABLE_PARSERS:
        parsed = TABLE_PARSERS[kind](body)
        assert parsed.date == date
        assert len(parsed.rates) == count
        assert parsed.source == ("mirror" if kind == "mirror" else "cbr")
        assert parsed.body_hash == hashlib.sha256(body).hexdigest()
    elif kind == "dynamic":
        assert len(parse_dynamic(body)) == count
    else:
        assert len(parse_valfull(body)) == count


@pytest.mark.parametrize("name", TABLES)
def test_tables_are_well_formed_and_exact(name: str) -> None:
    parsed = table(name)
    codes = [rate.code for rate in parsed.rates]
    assert len(set(codes)) == len(codes)
    for rate in parsed.rates:
        assert re.fullmatch(r"[A-Z]{3}", rate.code)
        assert re.fullmatch(r"R\d{5}[A-Z]?", rate.cbr_id)
        assert re.fullmatch(r"\d{3}", rate.num_code)
        assert rate.nominal >= 1
        assert rate.value > 0
        assert isinstance(rate.unit_rate, Decimal)
        # Exact: multiplying back gives the published Value to the last digit.
        assert HIGH.multiply(rate.unit_rate, Decimal(rate.nominal)) == rate.value
    by_code = parsed.by_code()
    assert by_code["USD"].name == "Доллар США"
    assert by_code["USD"].cbr_id == "R01235"
    assert by_code["USD"].num_code == "840"
    assert by_code["EUR"].name == "Евро"
    assert by_code["AUD"].num_code == "036"


@pytest.mark.parametrize("name", [DAILY_0425, DAILY_0319])
def test_unit_rates_equal_published_vunitrate(name: str) -> None:
    # Read VunitRate independently of the parser: CBR's figure and Value/Nominal must agree.
    published = dict(
        re.findall(
            r"<CharCode>([A-Z]{3})</CharCode>.*?<VunitRate>([^<]+)</VunitRate>",
            fixture(name).decode("cp1251"),
        )
    )
    rates = parse_daily(fixture(name)).by_code()
    assert set(published) == set(rates)
    for code, text in published.items():
        assert rates[code].unit_rate == Decimal(text.replace(",", ".")), code


# --- daily tables --------------------------------------------------------------------------


def test_2026_04_25_exact_figures() -> None:
    rates = parse_daily(fixture(DAILY_0425)).by_code()
    jpy, irr, eur, usd, hkd = (rates[c] for c in ("JPY", "IRR", "EUR", "USD", "HKD"))

    assert (jpy.nominal, jpy.value) == (100, Decimal("47.2636"))
    assert jpy.unit_rate * 1000 == Decimal("472.636")
    assert jpy.name == "Иен"

    assert (irr.nominal, irr.value) == (1_000_000, Decimal("53.9256"))
    assert irr.unit_rate == Decimal("0.0000539256")
    assert irr.unit_rate == parse_decimal("5,39256E-05")

    assert eur.unit_rate == Decimal("88.2826")
    assert usd.unit_rate == Decimal("75.5273")
    cross = HIGH.divide(eur.unit_rate, usd.unit_rate)
    assert cross == HIGH.divide(Decimal("88.2826"), Decimal("75.5273"))
    assert str(cross).startswith("1.16888330444753089280")
    assert len(cross.as_tuple().digits) >= 28

    assert (hkd.nominal, hkd.value, hkd.unit_rate) == (10, Decimal("96.5699"), Decimal("9.65699"))
    assert rates["GBP"].name == "Фунт стерлингов"
    assert rates["XDR"].name == "СДР (специальные права заимствования)"
    assert rates["BYN"].value == Decimal("26.7960")  # published scale kept; VunitRate is 26,796


def test_hkd_nominal_differs_between_tables() -> None:
    march = parse_daily(fixture(DAILY_0319)).by_code()["HKD"]
    april = parse_daily(fixture(DAILY_0425)).by_code()["HKD"]
    assert (march.nominal, april.nominal) == (1, 10)
    assert march.cbr_id == april.cbr_id == "R01200"


def test_older_formats_without_vunitrate() -> None:
    old = parse_daily(fixture(DAILY_2017)).by_code()
    assert old["GBP"].name == "Фунт стерлингов Соединенного королевства"
    assert (old["CNY"].nominal, old["CNY"].unit_rate) == (10, Decimal("8.87531"))
    assert (old["UZS"].nominal, old["UZS"].unit_rate) == (10_000, Decimal("0.00724929"))
    compact = parse_daily(fixture(DAILY_2022)).by_code()
    assert compact["USD"].cbr_id == "R01235"
    assert (compact["KRW"].nominal, compact["KRW"].unit_rate) == (1000, Decimal("0.0927618"))


def test_english_names_from_a_daily_eng_body() -> None:
    body = (
        '<?xml version="1.0" encoding="windows-1251"?>'
        '<ValCurs Date="25.04.2026" name="Foreign Currency Market">'
        '<Valute ID="R01235"><NumCode>840</NumCode><CharCode>USD</CharCode><Nominal>1</Nominal>'
        "<Name>US Dollar</Name><Value>75,5273</Value><VunitRate>75,5273</VunitRate></Valute>"
        '<Valute ID="R01820"><NumCode>392</NumCode><CharCode>JPY</CharCode>'
        "<Nominal>100</Nominal><Name>Japanese Yen</Name><Value>47,2636</Value>"
        "<VunitRate>0,472636</VunitRate></Valute></ValCurs>"
    ).encode("cp1251")
    assert english_names(body) == {"USD": "US Dollar", "JPY": "Japanese Yen"}


# --- dynamics and the currency reference ---------------------------------------------------


def test_hkd_dynamic_nominal_change_keeps_unit_rates_continuous() -> None:
    points = parse_dynamic(fixture(DYN_HKD))
    by_day = {point.date: point for point in points}
    before, after = by_day[dt.date(2026, 3, 6)], by_day[dt.date(2026, 3, 7)]
    assert (before.nominal, before.value) == (10, Decimal("100.1409"))
    assert (after.nominal, after.value) == (1, Decimal("10.1383"))
    assert before.unit_rate == Decimal("10.01409")
    assert after.unit_rate == Decimal("10.1383")
    assert [p.nominal for p in points] == [10] * 4 + [1] * 8
    for previous, current in itertools.pairwise(points):
        jump = abs(current.unit_rate - previous.unit_rate) / previous.unit_rate
        assert jump < Decimal("0.02"), (previous, current)
    assert after.value / before.value < Decimal("0.11")  # the raw Value does jump ~10x


def test_usd_dynamic_dates_and_trailing_zeros() -> None:
    points = parse_dynamic(fixture(DYN_USD))
    days = [point.date.day for point in points]
    assert days == [3, 4, 5, 6, 7, 11, 12, 13, 14, 17, 18, 19]
    assert all(point.date.month == 3 and point.nominal == 1 for point in points)
    six = points[3]
    assert six.value == Decimal("78.1900") and six.unit_rate == Decimal("78.19")
    assert points[-1].unit_rate == Decimal("83.1259")


def test_valfull_reference() -> None:
    currencies = parse_valfull(fixture(VALFULL))
    by_id = {currency.cbr_id: currency for currency in currencies}
    aud = by_id["R01010"]
    assert (aud.name_ru, aud.name_en, aud.nominal) == (
        "Австралийский доллар",
        "Australian Dollar",
        1,
    )
    assert (aud.parent_code, aud.iso_num_code, aud.iso_char_code) == ("R01010", "036", "AUD")
    assert by_id["R01020A"].parent_code == "R01020"
    assert by_id["R01375"].nominal == 10  # CNY: 1 in the 2021-2022 daily tables
    assert by_id["R01235"].name_ru == "Доллар США"
    talon = by_id["R01436"]
    assert (talon.iso_num_code, talon.iso_char_code) == (None, None)
    assert talon.parent_code == "R01435"
    assert [c.cbr_id for c in currencies if c.iso_char_code == "DEM"] == ["R01510", "R01510A"]


# --- the JSON mirror -----------------------------------------------------------------------


def test_mirror_json_rows() -> None:
    older = parse_mirror_json(fixture(JSON_2019)).by_code()
    assert older["JPY"].value == Decimal("57.357")
    assert older["JPY"].unit_rate == Decimal("0.57357")
    assert older["AMD"].name == "Армянских драмов"
    assert older["AMD"].num_code == "051"
    newer = parse_mirror_json(fixture(JSON_2021)).by_code()
    assert (newer["CNY"].nominal, newer["TRY"].nominal) == (1, 10)
    assert newer["USD"].name == "Доллар США"
    assert newer["KZT"].value == Decimal("16.9")


# --- invalid bodies ------------------------------------------------------------------------

HTML_CHALLENGE = (
    b"<!DOCTYPE html><html><head><title>DDoS-Guard</title></head>"
    b"<body>Checking your browser before accessing cbr.ru</body></html>"
)


def daily_xml(valutes: str, date: str = "25.04.2026") -> bytes:
    return (
        '<?xml version="1.0" encoding="windows-1251"?>'
        f'<ValCurs Date="{date}" name="Foreign Currency Market">{valutes}</ValCurs>'
    ).encode("cp1251")


def valute(
    code: str = "USD",
    nominal: str = "1",
    value: str = "75,5273",
    vunit: str | None = None,
    cbr_id: str = "R01235",
) -> str:
    extra = "" if vunit is None else f"<VunitRate>{vunit}</VunitRate>"
    return (
        f'<Valute ID="{cbr_id}"><NumCode>840</NumCode><CharCode>{code}</CharCode>'
        f"<Nominal>{nominal}</Nominal><Name>Доллар США</Name><Value>{value}</Value>{extra}"
        "</Valute>"
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "empty"),
        (b"   \n", "empty"),
        (HTML_CHALLENGE, "HTML"),
        (b"<html><body>500 Internal Server Error</body></html>", "HTML"),
        (b"Error in parameters", "not well-formed"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "not windows-1251"),
        (b"<?xml version='1.0'?><Error>oops</Error>", "root element is <Error>"),
        (b'<?xml version="1.0" encoding="cp500"?><ValCurs/>', "encoding"),
        (
            b'<?xml version="1.0"?><!DOCTYPE ValCurs [<!ENTITY a "x">]>'
            b'<ValCurs Date="01.01.2026"/>',
            "DTD",
        ),
        (daily_xml(""), "no rates"),
        (daily_xml(valute(), date="2026-04-25"), "DD.MM.YYYY"),
        (daily_xml(valute(), date="31.02.2026"), "does not exist"),
        (daily_xml(valute(value="0")), "not > 0"),
        (daily_xml(valute(value="-1,5")), "not > 0"),
        (daily_xml(valute(value="75.527,3")), "not a number"),
        (daily_xml(valute(value="NaN")), "not a number"),
        (daily_xml(valute(nominal="0")), "nominal"),
        (daily_xml(valute(nominal="1,5")), "nominal"),
        (daily_xml(valute(code="usd")), "3 uppercase letters"),
        (daily_xml(valute(code="US")), "3 uppercase letters"),
        (daily_xml(valute(cbr_id="X1")), "CBR id"),
        (daily_xml(valute(nominal="10", vunit="75,5273")), "does not match"),
        (daily_xml(valute() + valute()), "twice"),
        (daily_xml(valute().replace("<Value>75,5273</Value>", "")), "<Value> is missing"),
        (fixture(VALFULL), "root element is <Valuta>"),
    ],
)
def test_invalid_daily_bodies(body: bytes, message: str) -> None:
    with pytest.raises(CbrError, match=re.escape(message)):
        parse_daily(body)


def test_vunitrate_rounded_by_cbr_is_accepted() -> None:
    # 1/3 of a rouble per unit cannot be exact; CBR would publish it rounded.
    rate = parse_daily(daily_xml(valute(nominal="3", value="1", vunit="0,3333"))).rates[0]
    assert rate.unit_rate == HIGH.divide(Decimal(1), Decimal(3))


def test_windows_1251_is_decoded_from_the_declaration() -> None:
    body = daily_xml(valute())
    assert "Доллар США".encode("cp1251") in body
    assert parse_daily(body).rates[0].name == "Доллар США"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("5,39256E-05", Decimal("0.0000539256")),
        ("26,7960", Decimal("26.7960")),
        (" 75,5273 ", Decimal("75.5273")),
        ("100", Decimal(100)),
        ("1,5e+2", Decimal(150)),
    ],
)
def test_parse_decimal(text: str, expected: Decimal) -> None:
    assert parse_decimal(text) == expected


@pytest.mark.parametrize("text", [None, "", "abc", "1,2,3", "NaN", "Infinity", "1e", ",5"])
def test_parse_decimal_rejects(text: str | None) -> None:
    with pytest.raises(CbrError):
        parse_decimal(text)


def dynamic_xml(records: str) -> bytes:
    return (
        f'<ValCurs ID="R01200" DateRange1="01.03.2026" DateRange2="19.03.2026">{records}</ValCurs>'
    ).encode()


def record(date: str = "06.03.2026", nominal: str = "10", vunit: str = "10,01409") -> str:
    return (
        f'<Record Date="{date}" Id="R01200"><Nominal>{nominal}</Nominal>'
        f"<Value>100,1409</Value><VunitRate>{vunit}</VunitRate></Record>"
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (HTML_CHALLENGE, "HTML"),
        (b"", "empty"),
        (fixture(DAILY_0425), "DateRange1"),
        (dynamic_xml(record(nominal="1")), "does not match"),
        (dynamic_xml(record() + record()), "twice"),
        (dynamic_xml(record(date="20.03.2026")), "outside"),
        (dynamic_xml(record().replace('Id="R01200"', 'Id="R01235"')), "series of R01200"),
        (dynamic_xml(valute()), "unexpected <Valute>"),
    ],
)
def test_invalid_dynamic_bodies(body: bytes, message: str) -> None:
    with pytest.raises(CbrError, match=re.escape(message)):
        parse_dynamic(body)


def test_dynamic_records_are_sorted() -> None:
    body = dynamic_xml(record("07.03.2026", "1", "100,1409") + record())
    assert [point.date.day for point in parse_dynamic(body)] == [6, 7]


def test_dynamic_empty_range_is_an_empty_series() -> None:
    body = b'<ValCurs ID="R01235" DateRange1="08.03.2026" DateRange2="10.03.2026"/>'
    assert parse_dynamic(body) == []


@pytest.mark.parametrize("body", [HTML_CHALLENGE, fixture(DAILY_0425), b"<Valuta/>"])
def test_invalid_valfull_bodies(body: bytes) -> None:
    with pytest.raises(CbrError):
        parse_valfull(body)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (HTML_CHALLENGE, "HTML"),
        (b"", "empty"),
        (b"{not json", "not UTF-8 JSON"),
        (b"[]", "not an object"),
        (b'{"Date": "2021-12-31T11:30:00+03:00"}', "Valute"),
        (b'{"Date": "2021-12-31T11:30:00+03:00", "Valute": {}}', "no rates"),
        (b'{"Date": "yesterday", "Valute": {}}', "ISO 8601"),
        (
            b'{"Date": "2021-12-31T11:30:00+03:00", "Valute": {"USD": {"ID": "R01235",'
            b' "NumCode": "840", "CharCode": "USD", "Nominal": 1, "Name": "x", "Value": NaN}}}',
            "NaN",
        ),
        (
            b'{"Date": "2021-12-31T11:30:00+03:00", "Valute": {"USD": {"ID": "R01235",'
            b' "NumCode": "840", "CharCode": "USD", "Nominal": true, "Name": "x", "Value": 1.5}}}',
            "Nominal",
        ),
        (
            b'{"Date": "2021-12-31T11:30:00+03:00", "Valute": {"USD": {"ID": "R01235",'
            b' "NumCode": "840", "CharCode": "EUR", "Nominal": 1, "Name": "x", "Value": 1.5}}}',
            "differs from its key",
        ),
    ],
)
def test_invalid_mirror_bodies(body: bytes, message: str) -> None:
    with pytest.raises(CbrError, match=re.escape(message)):
        parse_mirror_json(body)


# --- the client ----------------------------------------------------------------------------

BASE = "https://cbr.test/scripts"
MIRROR = "https://mirror.test/daily_json.js"
XML_HEADERS = {"Content-Type": "text/xml; charset=windows-1251"}


class RecordingSleep:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


Handler = Callable[[httpx.Request], httpx.Response]


def make_client(handler: Handler, sleep: RecordingSleep, **kwargs: Any) -> CbrClient:
    return CbrClient(
        BASE,
        MIRROR,
        transport=httpx.MockTransport(handler),
        sleep=sleep,
        **kwargs,
    )


def xml_response(name: str, status: int = 200) -> httpx.Response:
    return httpx.Response(status, content=fixture(name), headers=XML_HEADERS)


async def test_daily_sends_headers_and_date_param() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return xml_response(DAILY_0425)

    sleep = RecordingSleep()
    async with make_client(handler, sleep) as client:
        got = await client.daily(dt.date(2026, 4, 27))
        await client.daily()
    assert got.date == dt.date(2026, 4, 25)  # the table's own date, not the requested one
    assert got.source == "cbr"
    first, second = seen
    assert first.url.path == "/scripts/XML_daily.asp"
    assert first.url.params["date_req"] == "27/04/2026"
    assert first.url.query == b"date_req=27/04/2026"
    assert first.headers["User-Agent"] == USER_AGENT
    assert "xml" in first.headers["Accept"]
    assert second.url.query == b""
    assert sleep.delays == []


async def test_retries_a_503_then_succeeds() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(503) if calls == 1 else xml_response(DAILY_0319)

    sleep = RecordingSleep()
    async with make_client(handler, sleep, backoff=1.0) as client:
        got = await client.daily()
    assert calls == 2
    assert got.date == dt.date(2026, 3, 19)
    assert len(sleep.delays) == 1
    assert 0.5 <= sleep.delays[0] <= 1.0


async def test_gives_up_after_retries_with_exponential_backoff() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(502)

    sleep = RecordingSleep()
    async with make_client(handler, sleep, backoff=1.0, max_backoff=100.0) as client:
        with pytest.raises(CbrError, match="HTTP 502") as caught:
            await client.daily()
    assert calls == 4  # the first attempt plus retries=3
    assert caught.value.status == 502
    for delay, (low, high) in zip(sleep.delays, [(0.5, 1), (1, 2), (2, 4)], strict=True):
        assert low <= delay <= high


async def test_client_error_status_is_not_retried() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(404, text="not found")

    sleep = RecordingSleep()
    async with make_client(handler, sleep) as client:
        with pytest.raises(CbrError, match="HTTP 404"):
            await client.daily()
    assert calls == 1
    assert sleep.delays == []


async def test_retry_after_is_honoured() -> None:
    responses = [httpx.Response(429, headers={"Retry-After": "3"}), xml_response(DAILY_0425)]

    def handler(request: httpx.Request) -> httpx.Response:
        return responses.pop(0)

    sleep = RecordingSleep()
    async with make_client(handler, sleep, backoff=0.01) as client:
        await client.daily()
    assert sleep.delays == [3.0]


async def test_html_challenge_is_an_error_never_an_empty_table() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=HTML_CHALLENGE, headers={"Content-Type": "text/html"})

    sleep = RecordingSleep()
    async with make_client(handler, sleep, retries=1) as client:
        with pytest.raises(CbrError, match="HTML page"):
            await client.daily()
    assert len(sleep.delays) == 1


async def test_network_error_becomes_cbr_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    sleep = RecordingSleep()
    async with make_client(handler, sleep, retries=2) as client:
        with pytest.raises(CbrError, match="ConnectError"):
            await client.daily()
    assert len(sleep.delays) == 2


async def test_redirects_are_followed() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "cbr.test":
            return httpx.Response(302, headers={"Location": "https://www.cbr.test/x.asp"})
        return xml_response(DAILY_0425)

    async with make_client(handler, RecordingSleep()) as client:
        assert (await client.daily()).date == dt.date(2026, 4, 25)


async def test_oversized_body_is_refused() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return xml_response(DAILY_0425)

    sleep = RecordingSleep()
    async with make_client(handler, sleep, max_body_bytes=1000) as client:
        with pytest.raises(CbrError, match="larger than"):
            await client.daily()
    assert sleep.delays == []


async def test_mirror_fallback_when_cbr_keeps_failing() -> None:
    hosts: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        hosts.append(request.url.host)
        if request.url.host == "cbr.test":
            return httpx.Response(503)
        assert request.url.path == "/daily_json.js"
        assert "json" in request.headers["Accept"]
        return httpx.Response(200, content=fixture(JSON_2021))

    sleep = RecordingSleep()
    async with make_client(handler, sleep) as client:
        got = await client.latest_with_fallback()
    assert got.source == "mirror"
    assert got.date == dt.date(2021, 12, 31)
    assert hosts == ["cbr.test"] * 4 + ["mirror.test"]


async def test_fallback_not_used_when_cbr_answers() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.host == "cbr.test"
        return xml_response(DAILY_0425)

    async with make_client(handler, RecordingSleep()) as client:
        assert (await client.latest_with_fallback()).source == "cbr"


async def test_mirror_archive_for_a_date_and_both_failing() -> None:
    paths: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        paths.append(request.url.path)
        if request.url.host == "cbr.test":
            return httpx.Response(200, content=HTML_CHALLENGE)
        return httpx.Response(404)

    async with make_client(handler, RecordingSleep(), retries=0) as client:
        with pytest.raises(CbrError, match=r"cbr\.ru failed .*HTML.*mirror failed .*HTTP 404"):
            await client.latest_with_fallback(dt.date(2021, 12, 31))
    assert paths == ["/scripts/XML_daily.asp", "/archive/2021/12/31/daily_json.js"]


async def test_dynamic_request_and_result() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return xml_response(DYN_HKD)

    async with make_client(handler, RecordingSleep()) as client:
        points = await client.dynamic("R01200", dt.date(2026, 3, 1), dt.date(2026, 3, 19))
        with pytest.raises(ValueError, match="CBR id"):
            await client.dynamic("R01200&x=1", dt.date(2026, 3, 1), dt.date(2026, 3, 19))
        with pytest.raises(ValueError, match="after"):
            await client.dynamic("R01200", dt.date(2026, 3, 19), dt.date(2026, 3, 1))
    assert len(points) == 12
    (request,) = seen
    assert request.url.path == "/scripts/XML_dynamic.asp"
    assert dict(request.url.params) == {
        "date_req1": "01/03/2026",
        "date_req2": "19/03/2026",
        "VAL_NM_RQ": "R01200",
    }


async def test_currencies_daily_only_and_merged() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.params["d"])
        return xml_response(VALFULL)

    async with make_client(handler, RecordingSleep()) as client:
        daily = await client.currencies(daily_only=True)
        merged = await client.currencies()
    assert seen == ["0", "0", "1"]
    assert len(daily) == len(merged) == 61  # the same ids in both lists are kept once


async def test_daily_english() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/scripts/XML_daily_eng.asp"
        assert request.url.params["date_req"] == "25/04/2026"
        return xml_response(DAILY_0425)

    async with make_client(handler, RecordingSleep()) as client:
        names = await client.daily_english(dt.date(2026, 4, 25))
    assert names["USD"] == "Доллар США"  # the Russian fixture stands in for the English one
    assert len(names) == 54
