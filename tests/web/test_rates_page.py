"""Rates on the page: an admin's refresh against a local fake cbr.ru reaches every page live,
the change arrows, the history chart, and the converter's exact value."""

from __future__ import annotations

import datetime as dt
import re
import shutil
from collections.abc import AsyncIterator
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI, Response
from playwright.async_api import Browser, Locator, Page, expect

from fxdesk.config import Settings
from fxdesk.events.nats_server import EmbeddedNats
from fxdesk.rates.cbr.daily import parse_daily
from fxdesk.users.models import Role
from tests.factories import make_settings
from tests.live import serving, token_for
from tests.rates.conftest import fixtures_dir
from tests.web.conftest import Site, element_shot, screenshot

FIXTURES = fixtures_dir()
if not FIXTURES.is_dir():
    raise RuntimeError(f"CBR fixtures not found at {FIXTURES}")

MARCH = "XML_daily_2026-03-19.xml"
APRIL = "XML_daily_2026-04-25.xml"
VALFULL = "XML_valFull_d0_asof-2021-09-25.xml"
# English names of the daily-set currencies XML_valFull (2021) does not list yet.
MORE_NAMES = {
    "AED": "UAE Dirham",
    "BDT": "Bangladeshi Taka",
    "BHD": "Bahraini Dinar",
    "BOB": "Boliviano",
    "CUP": "Cuban Peso",
    "DZD": "Algerian Dinar",
    "EGP": "Egyptian Pound",
    "ETB": "Ethiopian Birr",
    "GEL": "Georgian Lari",
    "IDR": "Indonesian Rupiah",
    "IRR": "Iranian Rial",
    "MMK": "Myanmar Kyat",
    "MNT": "Mongolian Tugrik",
    "NGN": "Nigerian Naira",
    "NZD": "New Zealand Dollar",
    "OMR": "Omani Rial",
    "QAR": "Qatari Riyal",
    "RSD": "Serbian Dinar",
    "SAR": "Saudi Riyal",
    "THB": "Thai Baht",
    "VND": "Vietnamese Dong",
}


def english_daily(body: bytes) -> bytes:
    """XML_daily_eng.asp for a recorded XML_daily.asp: the same table with English names."""
    full = (FIXTURES / VALFULL).read_bytes().decode("cp1251")
    names = dict(MORE_NAMES)
    for item in re.findall(r"<Item\b.*?</Item>", full, re.S):
        code = re.search(r"<ISO_Char_Code>\s*(\w+)\s*</ISO_Char_Code>", item)
        name = re.search(r"<EngName>(.*?)</EngName>", item)
        if code and name:
            names[code.group(1)] = name.group(1).strip()

    def rename(match: re.Match[str]) -> str:
        valute = match.group(0)
        code = re.search(r"<CharCode>(\w+)</CharCode>", valute)
        english = names.get(code.group(1), code.group(1)) if code else ""
        return re.sub(r"<Name>.*?</Name>", f"<Name>{english}</Name>", valute)

    text = re.sub(r"<Valute\b.*?</Valute>", rename, body.decode("cp1251"), flags=re.S)
    return text.encode("cp1251")


class FakeCbr:
    """cbr.ru's /scripts/ on loopback HTTP, serving one recorded table at a time."""

    def __init__(self) -> None:
        self.daily = (FIXTURES / MARCH).read_bytes()
        self.requests: list[str] = []

    def serve(self, name: str) -> None:
        self.daily = (FIXTURES / name).read_bytes()

    def site(self) -> FastAPI:
        site = FastAPI()

        @site.get("/scripts/{page}")
        async def scripts(page: str) -> Response:
            self.requests.append(page)
            if page == "XML_daily.asp":
                body = self.daily
            elif page == "XML_daily_eng.asp":
                body = english_daily(self.daily)
            else:
                return Response("not here", status_code=404)
            return Response(body, media_type="text/xml; charset=windows-1251")

        return site


@pytest.fixture
async def fake_cbr() -> AsyncIterator[tuple[FakeCbr, str]]:
    fake = FakeCbr()
    async with serving(fake.site()) as host:
        yield fake, host


@pytest.fixture
def web_settings(
    tmp_path: Path,
    template_db: Path,
    nats_server: EmbeddedNats,
    fake_cbr: tuple[FakeCbr, str],
) -> Settings:
    """As in conftest, with cbr.ru replaced by the fake (and no retries: it answers at once)."""
    db = tmp_path / "web.db"
    shutil.copyfile(template_db, db)
    return make_settings(
        tmp_path,
        db,
        nats_url=nats_server.url,
        cbr_base_url=f"http://{fake_cbr[1]}/scripts/",
        cbr_retries=0,
    )


def unit_rates(name: str) -> dict[str, Decimal]:
    return {rate.code: rate.unit_rate for rate in parse_daily((FIXTURES / name).read_bytes()).rates}


def row(page: Page, code: str) -> Locator:
    return page.locator(f'#rates-body tr[data-code="{code}"]')


async def test_refresh_chart_and_converter(
    site: Site, browser: Browser, fake_cbr: tuple[FakeCbr, str]
) -> None:
    fake, _ = fake_cbr
    app = site.app
    app.state.rates.clock = lambda: dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)
    first = await app.state.rates.scheduler.run_once("manual")  # the March table is stored
    assert first.table_date == dt.date(2026, 3, 19), first

    admin = await site.user("root", Role.admin)
    dealer = await site.user("dana")
    # Something on the board and in the chat, so the full-page shots show every panel at work.
    async with httpx.AsyncClient(
        base_url=site.url, cookies={"session_token": await token_for(app, dealer)}
    ) as api:
        for title, priority in (("Book the USD settlement", "urgent"), ("Send the CNY quote", "")):
            body = {"title": title, **({"priority": priority} if priority else {})}
            assert (await api.post("/api/v1/tasks", json=body)).status_code == 201
        await api.post("/api/v1/chat/messages", json={"text": "Morning! Rates are in."})

    boss = await site.page(browser, "root", user=admin)
    phone = await site.page(browser, "dana", user=dealer, mobile=True)
    await expect(phone.get_by_role("button", name="Refresh from CBR")).to_be_hidden()  # admins
    for page in (boss, phone):
        await expect(page.locator("#rates-meta")).to_have_attribute("data-date", "2026-03-19")
        await expect(row(page, "USD").locator(".chg-new")).to_have_text("new")

    # The admin forces a refresh; cbr.ru now has the April table. Both pages follow, live.
    fake.serve(APRIL)
    await boss.get_by_role("button", name="Refresh from CBR").click()
    for page in (boss, phone):
        await expect(page.locator("#rates-meta")).to_have_attribute("data-date", "2026-04-25")
        await expect(page.locator("#rates-meta")).to_contain_text("changes against 19 Mar 2026")
    await expect(phone.locator("#rates-notice")).to_have_text(
        "New CBR table of 25 Apr 2026 published."
    )

    march, april = unit_rates(MARCH), unit_rates(APRIL)
    for code in ("USD", "EUR", "JPY", "HKD"):
        delta = april[code] - march[code]
        arrow = "chg-up" if delta > 0 else "chg-down"
        sign = "+" if delta > 0 else ""
        for page in (boss, phone):
            await expect(row(page, code).locator(".rate")).to_have_text(format(april[code], "f"))
            await expect(row(page, code).locator(f".{arrow}")).to_contain_text(
                f"{sign}{format(delta, 'f')}"
            )
    # The published figures as CBR wrote them (JPY per 100), on the wide screen.
    jpy = next(r for r in parse_daily((FIXTURES / APRIL).read_bytes()).rates if r.code == "JPY")
    await expect(row(boss, "JPY").locator("td").nth(1)).to_have_text(str(jpy.nominal))
    await expect(row(boss, "JPY").locator("td").nth(2)).to_have_text(format(jpy.value, "f"))
    await expect(row(boss, "USD").locator(".col-name")).to_have_text("US Dollar")

    # History: pick USD from the table, then a year.
    for page in (boss, phone):
        await row(page, "USD").get_by_role("button").click()
        await expect(page.locator("#chart")).to_have_attribute("data-code", "USD")
        await expect(page.locator("#chart")).to_have_attribute("data-points", "1")  # 30 days
        await page.get_by_role("button", name="365 days").click()
        await expect(page.locator("#chart")).to_have_attribute("data-points", "2")
        await expect(page.locator("#chart svg polyline")).to_have_count(1)
        await expect(page.locator("#chart-caption")).to_contain_text(
            f"USD {format(april['USD'], 'f')} RUB"
        )
    await boss.get_by_label("Currency", exact=True).select_option("EUR")
    await expect(boss.locator("#chart")).to_have_attribute("data-code", "EUR")
    await expect(row(boss, "EUR")).to_have_class(re.compile(r"\bselected\b"))

    # The converter: the exact value, rounded once to the target's minor units.
    cent = Decimal("0.01")
    await boss.get_by_label("Amount").fill("1 234,56")
    await boss.get_by_label("From").select_option("USD")
    await boss.get_by_label("To", exact=True).select_option("EUR")
    await boss.get_by_role("button", name="Convert").click()
    expected = (Decimal("1234.56") * april["USD"] / april["EUR"]).quantize(cent, ROUND_HALF_EVEN)
    await expect(boss.locator("#cv-value")).to_have_text(format(expected, "f"))
    await expect(boss.locator("#cv-result")).to_contain_text("1234.56 USD")
    await expect(boss.locator("#cv-result")).to_contain_text("CBR table of 25 Apr 2026")
    async with httpx.AsyncClient(
        base_url=site.url, cookies={"session_token": await token_for(app, admin)}
    ) as api:
        query = {"from": "USD", "to": "EUR", "amount": "1234.56"}
        answer = (await api.get("/api/v1/convert", params=query)).json()
    await expect(boss.locator("#cv-value")).to_have_text(answer["result"])
    await expect(boss.locator("#cv-result .cv-exact")).to_contain_text(answer["result_unrounded"])

    # On a date: the table in force then (March), a currency with no minor units.
    await phone.get_by_label("Amount").fill("1000")
    await phone.get_by_label("From").select_option("IRR")
    await phone.get_by_label("To", exact=True).select_option("JPY")
    await phone.get_by_label("Date").fill("2026-04-01")
    await phone.get_by_role("button", name="Convert").click()
    expected = (Decimal(1000) * march["IRR"] / march["JPY"]).quantize(Decimal(1), ROUND_HALF_EVEN)
    await expect(phone.locator("#cv-value")).to_have_text(format(expected, "f"))
    await expect(phone.locator("#cv-result")).to_contain_text("CBR table of 19 Mar 2026")
    await phone.get_by_label("Amount").fill("-5")
    await phone.get_by_role("button", name="Convert").click()
    await expect(phone.locator("#cv-error")).to_contain_text("greater than 0")
    await phone.get_by_label("Amount").fill("250")
    await phone.get_by_label("Date").fill("")
    await phone.get_by_label("From").select_option("USD")
    await phone.get_by_label("To", exact=True).select_option("RUB")
    await phone.get_by_role("button", name="Convert").click()
    await expect(phone.locator("#cv-value")).to_have_text(
        format((250 * april["USD"]).quantize(cent, ROUND_HALF_EVEN), "f")
    )
    await phone.locator("#cv-result").scroll_into_view_if_needed()

    for page in (boss, phone):  # the tables from their first row, for the pictures
        await page.locator("#rates .table-wrap").evaluate("box => { box.scrollTop = 0; }")
    await screenshot(boss, "desktop-dashboard")
    await screenshot(phone, "mobile-dashboard")
    for page, size in ((boss, "desktop"), (phone, "mobile")):
        await element_shot(page, "#rates", f"{size}-rates")
        await element_shot(page, "#history", f"{size}-history")
        await element_shot(page, "#convert", f"{size}-converter")
    assert fake.requests.count("XML_daily.asp") == 2
    assert not site.console, site.console
