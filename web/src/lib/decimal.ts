/**
 * Exact decimal arithmetic on the API's decimal strings ("1600.50"), with BigInt.
 *
 * Prices, quantities and balances never become floating-point numbers here: a value is
 * an integer count of 10^-scale units. Only the chart (which draws pixels) converts to
 * `number`, and it does so itself.
 */

export interface Dec {
  readonly units: bigint;
  readonly scale: number; // value = units / 10^scale
}

const PLAIN = /^(-?)(\d+)(?:\.(\d+))?$/;

/** A plain decimal string (no exponent, no sign but "-"); null when it is not one. */
export function parse(text: string): Dec | null {
  const m = PLAIN.exec(text.trim());
  if (m === null) return null;
  const fraction = m[3] ?? "";
  const units = BigInt(m[2] + fraction);
  return { units: m[1] === "-" ? -units : units, scale: fraction.length };
}

function must(text: string): Dec {
  const d = parse(text);
  if (d === null) throw new Error(`not a decimal: ${JSON.stringify(text)}`);
  return d;
}

function pow10(n: number): bigint {
  return 10n ** BigInt(n);
}

function rescale(d: Dec, scale: number): bigint {
  return d.units * pow10(scale - d.scale);
}

/** Writes units/10^scale as a plain string with exactly `scale` decimals. */
function write(units: bigint, scale: number): string {
  const negative = units < 0n;
  const digits = (negative ? -units : units).toString().padStart(scale + 1, "0");
  const whole = digits.slice(0, digits.length - scale);
  const text = scale > 0 ? `${whole}.${digits.slice(digits.length - scale)}` : whole;
  return negative ? `-${text}` : text;
}

/** The number of decimals a value is written with, trailing zeros ignored ("0.010" -> 2). */
export function decimalsOf(text: string): number {
  const fraction = text.split(".")[1] ?? "";
  return fraction.replace(/0+$/, "").length;
}

/** The value without trailing zeros: one key per number ("1600.50" and "1600.5" alike). */
export function normalize(text: string): string {
  const d = must(text);
  return write(d.units, d.scale)
    .replace(/(\.\d*?)0+$/, "$1")
    .replace(/\.$/, "");
}

export function compare(a: string, b: string): number {
  const x = must(a);
  const y = must(b);
  const scale = Math.max(x.scale, y.scale);
  const diff = rescale(x, scale) - rescale(y, scale);
  return diff > 0n ? 1 : diff < 0n ? -1 : 0;
}

export function isZero(text: string): boolean {
  return must(text).units === 0n;
}

export function add(a: string, b: string): string {
  const x = must(a);
  const y = must(b);
  const scale = Math.max(x.scale, y.scale);
  return normalize(write(rescale(x, scale) + rescale(y, scale), scale));
}

export function sub(a: string, b: string): string {
  return add(a, negate(b));
}

function negate(text: string): string {
  const d = must(text);
  return write(-d.units, d.scale);
}

export function mul(a: string, b: string): string {
  const x = must(a);
  const y = must(b);
  return normalize(write(x.units * y.units, x.scale + y.scale));
}

/** a / b cut (towards zero) to `decimals` decimals. */
export function div(a: string, b: string, decimals: number): string {
  const x = must(a);
  const y = must(b);
  if (y.units === 0n) throw new Error("division by zero");
  // a/b = (xu / 10^xs) / (yu / 10^ys); scaled by 10^decimals.
  const numerator = x.units * pow10(y.scale + decimals);
  const denominator = y.units * pow10(x.scale);
  return write(numerator / denominator, decimals);
}

/** True when `value` is a whole number of `step`s (a price on the tick, a size on the step). */
export function isMultiple(value: string, step: string): boolean {
  const x = must(value);
  const s = must(step);
  if (s.units === 0n) return true;
  const scale = Math.max(x.scale, s.scale);
  return rescale(x, scale) % rescale(s, scale) === 0n;
}

/** The largest multiple of `step` not above `value` (value >= 0). */
export function floorTo(value: string, step: string): string {
  const x = must(value);
  const s = must(step);
  const scale = Math.max(x.scale, s.scale);
  const units = rescale(s, scale);
  const steps = rescale(x, scale) / units;
  return write((steps * units) / pow10(scale - s.scale), s.scale);
}

/**
 * The value with exactly `decimals` decimals: extra digits are cut towards zero ("down") or
 * rounded half away from zero ("round").
 */
export function toFixed(text: string, decimals: number, mode: "down" | "round" = "round"): string {
  const d = must(text);
  if (d.scale <= decimals) return write(rescale(d, decimals), decimals);
  const factor = pow10(d.scale - decimals);
  const magnitude = d.units < 0n ? -d.units : d.units;
  let kept = magnitude / factor;
  if (mode === "round" && (magnitude % factor) * 2n >= factor) kept += 1n;
  return write(d.units < 0n ? -kept : kept, decimals);
}
