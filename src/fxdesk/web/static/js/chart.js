// chart.js — the history of one currency (30, 90 or 365 days) as an SVG line drawn here.

import { api } from "./api.js";
import { compare, position } from "./decimal.js";
import { $, daysBefore, formatDay, h, s } from "./dom.js";

const WIDTH = 640;
const HEIGHT = 240;
const PAD = { left: 12, right: 12, top: 28, bottom: 30 };
const STEPS = 10000; // vertical resolution of the exact position computation

function dayNumber(isoDate) {
  return Date.UTC(+isoDate.slice(0, 4), +isoDate.slice(5, 7) - 1, +isoDate.slice(8, 10)) / 864e5;
}

export class HistoryChart {
  constructor({ onSelect }) {
    this.onSelect = onSelect;
    this.code = null;
    this.days = 30;
    this.end = null;
    this.request = 0;
    this.box = $("chart");
    this.controls = document.querySelector("#history .chart-controls");
    this.caption = $("chart-caption");
    this.select = $("chart-code");
    this.select.addEventListener("change", () => this.onSelect(this.select.value, false));
    this.buttons = [...document.querySelectorAll("#history .seg")];
    for (const button of this.buttons) {
      button.addEventListener("click", () => this.setDays(Number(button.dataset.days)));
    }
  }

  reset() {
    this.end = null;
    this.controls.hidden = true;
    this.select.replaceChildren();
    this.box.replaceChildren();
    this.caption.textContent = "";
  }

  /** The table in force: its codes fill the picker and its date ends the period. */
  setTable(table) {
    if (!table) {
      this.reset();
      this.box.replaceChildren(h("p", { class: "chart-empty" }, "No rates yet."));
      return;
    }
    this.controls.hidden = false;
    const codes = table.rates.map((row) => row.code).filter((code) => code !== table.base);
    const names = new Map(table.rates.map((row) => [row.code, row.name_en || row.name]));
    if (!this.code || !codes.includes(this.code)) {
      this.code = codes.includes("USD") ? "USD" : codes[0];
    }
    this.select.replaceChildren(
      ...codes.map((code) =>
        h(
          "option",
          { value: code, selected: code === this.code },
          `${code} — ${names.get(code)}`,
        ),
      ),
    );
    this.select.value = this.code;
    this.end = table.date;
    this.base = table.base;
    this.load();
  }

  show(code) {
    this.code = code;
    this.select.value = code;
    this.load();
  }

  setDays(days) {
    this.days = days;
    for (const button of this.buttons) {
      button.setAttribute("aria-pressed", String(Number(button.dataset.days) === days));
    }
    this.load();
  }

  async load() {
    if (!this.end || !this.code) return;
    const ticket = ++this.request;
    const code = this.code;
    const start = daysBefore(this.end, this.days);
    this.box.setAttribute("aria-busy", "true");
    let data;
    try {
      data = await api("/rates/series", { query: { codes: code, start, end: this.end } });
    } catch (error) {
      if (ticket === this.request) this.caption.textContent = `No history: ${error.detail}`;
      return;
    } finally {
      if (ticket === this.request) this.box.removeAttribute("aria-busy");
    }
    if (ticket !== this.request) return; // a newer choice is on its way
    this.draw(code, data.base, start, this.end, data.series[code] || []);
  }

  draw(code, base, start, end, points) {
    this.box.dataset.code = code;
    this.box.dataset.points = String(points.length);
    const period = `${formatDay(start)} – ${formatDay(end)}`;
    if (!points.length) {
      this.box.replaceChildren(h("p", { class: "chart-empty" }, "No CBR tables in this period."));
      this.caption.textContent = `${code} in ${base}, ${period}: no data.`;
      return;
    }
    let low = points[0].rate;
    let high = points[0].rate;
    for (const point of points) {
      if (compare(point.rate, low) < 0) low = point.rate;
      if (compare(point.rate, high) > 0) high = point.rate;
    }
    const first = dayNumber(start);
    const span = Math.max(1, dayNumber(end) - first);
    const plotW = WIDTH - PAD.left - PAD.right;
    const plotH = HEIGHT - PAD.top - PAD.bottom;
    const xy = points.map((point) => [
      PAD.left + ((dayNumber(point.date) - first) / span) * plotW,
      PAD.top + plotH - (position(point.rate, low, high, STEPS) / STEPS) * plotH,
    ]);
    const bottom = PAD.top + plotH;
    const line = xy.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(" ");
    const last = points[points.length - 1];
    const [lastX, lastY] = xy[xy.length - 1];
    const summary =
      `${code} in ${base} per unit, ${period}: ${points.length} tables, ` +
      `low ${low}, high ${high}, last ${last.rate} on ${formatDay(last.date)}.`;
    const titleId = `chart-title-${code}`;
    const svg = s(
      "svg",
      {
        viewBox: `0 0 ${WIDTH} ${HEIGHT}`,
        role: "img",
        "aria-labelledby": titleId,
        class: "chart-svg",
      },
      s("title", { id: titleId }, summary),
      s("line", {
        class: "grid",
        x1: PAD.left,
        x2: WIDTH - PAD.right,
        y1: PAD.top,
        y2: PAD.top,
      }),
      s("line", {
        class: "grid",
        x1: PAD.left,
        x2: WIDTH - PAD.right,
        y1: PAD.top + plotH,
        y2: PAD.top + plotH,
      }),
      s("polygon", {
        class: "area",
        points: `${xy[0][0].toFixed(1)},${bottom} ${line} ${lastX.toFixed(1)},${bottom}`,
      }),
      s("polyline", { class: "series", points: line }),
      ...xy.map(([x, y], index) =>
        s(
          "circle",
          { class: "dot", cx: x.toFixed(1), cy: y.toFixed(1), r: points.length > 60 ? 1.5 : 3 },
          s("title", {}, `${formatDay(points[index].date)}: ${points[index].rate}`),
        ),
      ),
      s("circle", { class: "dot-last", cx: lastX.toFixed(1), cy: lastY.toFixed(1), r: 5 }),
    );
    const labels = h(
      "div",
      { class: "chart-labels", "aria-hidden": "true" },
      h("span", { class: "lbl lbl-high" }, `high ${high}`),
      h("span", { class: "lbl lbl-low" }, `low ${low}`),
      h("span", { class: "lbl lbl-start" }, formatDay(start)),
      h("span", { class: "lbl lbl-end" }, formatDay(end)),
    );
    this.box.replaceChildren(svg, labels);
    this.caption.replaceChildren(
      h("strong", { class: "chart-last" }, `${code} ${last.rate} ${base}`),
      ` on ${formatDay(last.date)} · low ${low} · high ${high} · ${points.length} tables`,
    );
  }
}
