// rates.js — the CBR table: per-unit rate and change against the previous table, live.

import { api } from "./api.js";
import { compare, subtract } from "./decimal.js";
import { $, debounce, formatDay, h } from "./dom.js";

function changeCell(rate, previous) {
  if (previous === null || previous === undefined) {
    return h("span", { class: "chg chg-new", title: "No previous table" }, "new");
  }
  const direction = compare(rate, previous);
  const delta = subtract(rate, previous);
  if (direction === null || delta === null) return h("span", { class: "chg" }, "—");
  if (direction === 0) {
    return h(
      "span",
      { class: "chg chg-same", title: `unchanged from ${previous}` },
      h("span", { "aria-hidden": "true" }, "▬ "),
      h("span", { class: "sr-only" }, "unchanged "),
      "0",
    );
  }
  const up = direction > 0;
  return h(
    "span",
    { class: `chg ${up ? "chg-up" : "chg-down"}`, title: `was ${previous}` },
    h("span", { "aria-hidden": "true" }, up ? "▲ " : "▼ "),
    h("span", { class: "sr-only" }, up ? "up " : "down "),
    up ? `+${delta}` : delta,
  );
}

export class RatesPanel {
  /** onTable(table | null): the table in force changed (the chart and converter follow). */
  constructor({ onTable, onSelect }) {
    this.onTable = onTable;
    this.onSelect = onSelect;
    this.table = null;
    this.user = null;
    this.selected = null;
    this.body = $("rates-body");
    this.meta = $("rates-meta");
    this.notice = $("rates-notice");
    this.wrap = document.querySelector("#rates .table-wrap");
    this.refreshButton = $("rates-refresh");
    this.refreshButton.addEventListener("click", () => this.refresh());
    this.reloadSoon = debounce(() => this.load(), 150);
    this.expected = null; // what the last rate event announced, until the table shows it
    this.retries = 0;
  }

  reset(user) {
    this.user = user;
    this.table = null;
    this.refreshButton.hidden = !user || user.role !== "admin";
    this.body.replaceChildren();
    this.wrap.hidden = true;
    this.meta.textContent = "Loading…";
    this.notice.textContent = "";
  }

  async load() {
    try {
      const status = await api("/rates/status");
      if (!status.latest_date) {
        this.retryUnlessShown(null);
        this.table = null;
        this.body.replaceChildren();
        this.wrap.hidden = true;
        const admin = this.user && this.user.role === "admin";
        this.meta.textContent =
          "No CBR table is stored yet: the first fetch has not succeeded." +
          (admin ? " Use “Refresh from CBR” to fetch now." : "");
        this.onTable(null);
        return;
      }
      this.table = await api("/rates/latest");
    } catch (error) {
      this.meta.textContent = `Rates are unavailable: ${error.detail || error.message}`;
      return;
    }
    this.retryUnlessShown(this.table);
    this.render();
    this.onTable(this.table);
  }

  /** True when `table` already reflects the announced change (or a later one). */
  shows(table, expected) {
    if (!table) return false;
    if (expected.date > table.today) return Boolean(table.next && table.next.date >= expected.date);
    if (expected.date !== table.date) return expected.date < table.date;
    if (!expected.code) return true;
    const row = table.rates.find((item) => item.code === expected.code);
    return Boolean(row) && compare(row.rate_unrounded, expected.value) === 0;
  }

  /** Every instance's cache follows the event stream a moment later: ask again until it has. */
  retryUnlessShown(table) {
    if (!this.expected) return;
    if (this.shows(table, this.expected) || this.retries >= 10) {
      this.expected = null;
      this.retries = 0;
      return;
    }
    this.retries += 1;
    setTimeout(() => this.load(), 250 * this.retries);
  }

  render() {
    const table = this.table;
    const parts = [`Table of ${formatDay(table.date)}`];
    if (table.previous_date) parts.push(`changes against ${formatDay(table.previous_date)}`);
    parts.push(`${table.count} currencies, RUB per unit`);
    this.meta.textContent = parts.join(" · ");
    this.meta.dataset.date = table.date;
    $("rates-caption").textContent = `Official CBR rates of ${formatDay(table.date)}`;
    if (table.next) {
      this.notice.textContent = `The table of ${formatDay(table.next.date)} is already published.`;
    }
    const rows = table.rates.map((row) =>
      h(
        "tr",
        { dataset: { code: row.code }, class: row.code === this.selected ? "selected" : null },
        h(
          "th",
          { scope: "row" },
          h(
            "button",
            {
              type: "button",
              class: "code-btn",
              title: `Show the history of ${row.code}`,
              "aria-label": `${row.code}, show its history`,
              onclick: () => this.onSelect(row.code, true),
            },
            row.code,
          ),
          h("span", { class: "name-inline" }, row.name_en || row.name),
        ),
        h("td", { class: "col-name" }, row.name_en || row.name),
        h("td", { class: "num col-wide" }, String(row.nominal)),
        h("td", { class: "num col-wide" }, row.value),
        h("td", { class: "num rate" }, row.rate),
        h("td", { class: "num change" }, changeCell(row.rate, row.previous_rate)),
      ),
    );
    this.body.replaceChildren(...rows);
    this.wrap.hidden = false;
  }

  highlight(code) {
    this.selected = code;
    for (const row of this.body.querySelectorAll("tr")) {
      row.classList.toggle("selected", row.dataset.code === code);
    }
  }

  onEvent(event) {
    if (event.manual) return; // manual rates live apart from the CBR tables
    if (event.event === "rates_published") {
      this.notice.textContent = `New CBR table of ${formatDay(event.date)} published.`;
      this.expected = { date: event.date };
    } else if (event.correction && event.date) {
      this.expected = { date: event.date, code: event.code, value: event.value };
    }
    this.retries = 0;
    this.reloadSoon(); // an official rate created, updated (a correction) or deleted
  }

  async refresh() {
    this.refreshButton.disabled = true;
    this.notice.textContent = "Fetching the CBR table…";
    try {
      const report = await api("/rates/refresh", { method: "POST" });
      this.notice.textContent = report.table_date
        ? `Fetched the CBR table of ${formatDay(report.table_date)}: ` +
          (report.rows_changed ? `${report.rows_changed} rates stored.` : "nothing new.")
        : report.message || "Done.";
      await this.load();
    } catch (error) {
      this.notice.textContent = `Refresh failed: ${error.detail}`;
    } finally {
      this.refreshButton.disabled = false;
    }
  }
}
