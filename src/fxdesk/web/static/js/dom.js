// dom.js — tiny DOM helpers: build elements (text only, never HTML strings), format dates.

const SVG_NS = "http://www.w3.org/2000/svg";

function apply(el, attrs) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") el.setAttribute("class", value);
    else if (key === "text") el.textContent = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
}

function append(el, children) {
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** An HTML element: h("button", {type: "button", onclick}, "Save"). */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  apply(el, attrs);
  append(el, children);
  return el;
}

/** An SVG element. */
export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  apply(el, attrs);
  append(el, children);
  return el;
}

export const $ = (id) => document.getElementById(id);

const timeFormat = new Intl.DateTimeFormat(undefined, {
  day: "numeric",
  month: "short",
  hour: "2-digit",
  minute: "2-digit",
});
const clockFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const dayFormat = new Intl.DateTimeFormat(undefined, {
  day: "numeric",
  month: "short",
  year: "numeric",
  timeZone: "UTC",
});

/** "23 Nov, 12:03" for an ISO timestamp, in the reader's time zone. */
export function formatTime(iso) {
  return iso ? timeFormat.format(new Date(iso)) : "";
}

/** "12:03" for an ISO timestamp. */
export function formatClock(iso) {
  return iso ? clockFormat.format(new Date(iso)) : "";
}

/** "25 Apr 2026" for a calendar date "2026-04-25" (no time zone shift). */
export function formatDay(isoDate) {
  return isoDate ? dayFormat.format(new Date(`${isoDate}T00:00:00Z`)) : "";
}

/** The calendar date `days` before "YYYY-MM-DD". */
export function daysBefore(isoDate, days) {
  const date = new Date(`${isoDate}T00:00:00Z`);
  date.setUTCDate(date.getUTCDate() - days);
  return date.toISOString().slice(0, 10);
}

/** A short message at the bottom of the page, optionally with one action button. */
export function toast(text, action) {
  const box = $("toasts");
  const item = h("div", { class: "toast" }, h("span", {}, text));
  if (action) {
    item.append(
      h(
        "button",
        {
          type: "button",
          class: "btn btn-small",
          onclick: () => {
            item.remove();
            action.run();
          },
        },
        action.label,
      ),
    );
  }
  box.append(item);
  setTimeout(() => item.remove(), action ? 8000 : 4000);
}

/** Re-run `fn` at most once per `ms`, after the last call. */
export function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}
