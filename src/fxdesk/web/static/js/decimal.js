// decimal.js — exact decimal strings from the API: compare and subtract with BigInt, never a
// JS float, so "75.5273" stays exactly that.

const PLAIN = /^([+-])?(\d*)(?:\.(\d*))?$/;

/** {units, scale} with value = units / 10^scale, or null when `text` is not a plain decimal. */
export function parse(text) {
  const match = PLAIN.exec(String(text ?? "").trim());
  if (!match) return null;
  const whole = match[2] || "";
  const fraction = match[3] || "";
  if (!whole && !fraction) return null;
  const digits = BigInt((whole || "0") + fraction);
  return { units: match[1] === "-" ? -digits : digits, scale: fraction.length };
}

function aligned(a, b) {
  const scale = Math.max(a.scale, b.scale);
  return [
    a.units * 10n ** BigInt(scale - a.scale),
    b.units * 10n ** BigInt(scale - b.scale),
    scale,
  ];
}

/** -1, 0 or 1; null when either is not a decimal. */
export function compare(a, b) {
  const x = parse(a);
  const y = parse(b);
  if (!x || !y) return null;
  const [p, q] = aligned(x, y);
  return p === q ? 0 : p < q ? -1 : 1;
}

/** Positional text of units / 10^scale: 1234n, 2 -> "12.34". */
export function format(units, scale) {
  const negative = units < 0n;
  let digits = (negative ? -units : units).toString();
  if (scale > 0) {
    digits = digits.padStart(scale + 1, "0");
    digits = `${digits.slice(0, -scale)}.${digits.slice(-scale)}`;
  }
  return (negative ? "-" : "") + digits;
}

/** a - b, exactly, as text ("53.8359" - "53.12" -> "0.7159"); null when not decimals. */
export function subtract(a, b) {
  const x = parse(a);
  const y = parse(b);
  if (!x || !y) return null;
  const [p, q, scale] = aligned(x, y);
  return format(p - q, scale);
}

/** True for a decimal greater than zero. */
export function isPositive(text) {
  const x = parse(text);
  return x !== null && x.units > 0n;
}

/**
 * Where `value` sits between `low` and `high`, in whole steps 0..steps (for drawing only: the
 * position is computed exactly and only the small step count becomes a number).
 */
export function position(value, low, high, steps) {
  const parts = [parse(value), parse(low), parse(high)];
  if (parts.some((part) => part === null)) return 0;
  const scale = Math.max(...parts.map((part) => part.scale));
  const [v, lo, hi] = parts.map((part) => part.units * 10n ** BigInt(scale - part.scale));
  const span = hi - lo;
  if (span === 0n) return steps / 2;
  return Number(((v - lo) * BigInt(steps)) / span);
}
