// converter.js — exact conversion through the API; the result is shown exactly as returned.

import { api } from "./api.js";
import { isPositive } from "./decimal.js";
import { $, formatDay, h } from "./dom.js";

const PLAIN_AMOUNT = /^\d+(\.\d+)?$|^\.\d+$/;

/** "1 234,50" -> "1234.50": the reader's spaces and decimal comma, never a float. */
function normalizeAmount(text) {
  const compact = text.replace(/[\s\u00a0\u202f']/g, "");
  return compact.includes(".") ? compact : compact.replace(",", ".");
}

export class Converter {
  constructor() {
    this.form = $("convert-form");
    this.amount = $("cv-amount");
    this.from = $("cv-from");
    this.to = $("cv-to");
    this.date = $("cv-date");
    this.error = $("cv-error");
    this.result = $("cv-result");
    this.last = null;
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.convert();
    });
    $("cv-swap").addEventListener("click", () => {
      const from = this.from.value;
      this.from.value = this.to.value;
      this.to.value = from;
      if (this.last) this.convert();
    });
  }

  reset() {
    this.last = null;
    this.setEnabled(false);
    this.result.replaceChildren();
    this.error.textContent = "";
  }

  setEnabled(enabled) {
    for (const control of this.form.elements) control.disabled = !enabled;
    this.form.setAttribute("aria-disabled", String(!enabled));
  }

  /** Fill the currency pickers from the table in force (RUB included). */
  setTable(table) {
    this.setEnabled(Boolean(table));
    if (!table) return;
    const codes = [...new Set([table.base, ...table.rates.map((row) => row.code)])].sort();
    const keep = (select, fallback) => {
      const current = select.value || fallback;
      select.replaceChildren(...codes.map((code) => h("option", { value: code }, code)));
      select.value = codes.includes(current) ? current : codes[0];
    };
    keep(this.from, "USD");
    keep(this.to, "RUB");
    this.date.max = table.today || table.date;
    // A result computed with the table in force follows a newly published table.
    if (this.last && !this.last.requested_date) this.convert();
  }

  async convert() {
    const amount = normalizeAmount(this.amount.value);
    this.error.textContent = "";
    if (!PLAIN_AMOUNT.test(amount) || !isPositive(amount)) {
      this.error.textContent = "Enter an amount greater than 0, such as 100 or 12.50.";
      this.amount.setAttribute("aria-invalid", "true");
      this.amount.focus();
      return;
    }
    this.amount.removeAttribute("aria-invalid");
    const query = { from: this.from.value, to: this.to.value, amount, date: this.date.value };
    let answer;
    try {
      answer = await api("/convert", { query });
    } catch (error) {
      this.error.textContent = error.detail;
      return;
    }
    this.last = answer;
    this.render(answer);
  }

  render(answer) {
    const table = answer.date
      ? `CBR table of ${formatDay(answer.date)}` +
        (answer.requested_date && answer.requested_date !== answer.date
          ? ` (in force on ${formatDay(answer.requested_date)})`
          : "")
      : "";
    this.result.replaceChildren(
      h(
        "p",
        { class: "cv-main" },
        h("span", { class: "cv-in" }, `${answer.amount} ${answer.from}`),
        h("span", { class: "cv-eq", "aria-hidden": "true" }, " = "),
        h("span", { class: "sr-only" }, " is "),
        h("strong", { class: "cv-value", id: "cv-value" }, answer.result),
        ` ${answer.to}`,
      ),
      h(
        "p",
        { class: "meta" },
        `1 ${answer.from} = ${answer.rate} ${answer.to}`,
        table ? ` · ${table}` : "",
      ),
      h(
        "p",
        { class: "meta cv-exact" },
        "Before rounding: ",
        h("span", { class: "mono" }, answer.result_unrounded),
      ),
    );
  }
}
