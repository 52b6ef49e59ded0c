// Number and text formatting for cells and labels (pure functions, unit-tested).

/** Format a number for a table cell: integers as-is, others to 4 significant digits. */
export function formatNumber(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (!Number.isFinite(v)) return v > 0 ? "inf" : "-inf";
  if (Number.isInteger(v) && Math.abs(v) < 1e15) return String(v);
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e6 || a < 1e-3)) return v.toExponential(3);
  return String(Number(v.toPrecision(4)));
}

/** Thousands separators for counts ("1,000,000"). */
export function formatCount(n: number): string {
  return Math.round(n).toLocaleString("en-US");
}

/** A share in [0, 1] as a percentage with one decimal ("12.5%"). */
export function formatShare(s: number): string {
  return `${(s * 100).toFixed(1)}%`;
}

/**
 * Parse a weight typed by the user. Returns the number, or an error text when the
 * input is not a finite number >= 0 (the rule the kernel enforces too).
 */
export function parseWeight(text: string): { value: number } | { error: string } {
  const t = text.trim();
  if (t === "") return { error: "enter a number >= 0" };
  if (/^-\s*(\d|\.\d|inf)/i.test(t)) return { error: `weights must be >= 0; got ${t}` };
  if (!/^[+]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(t)) {
    return { error: `"${t}" is not a number; enter a finite number >= 0` };
  }
  const v = Number(t);
  if (!Number.isFinite(v)) return { error: "weights must be finite" };
  return { value: v };
}

/** A local time "HH:MM:SS" (and the date when not today) for an ISO timestamp. */
export function formatTime(iso: string, now: Date = new Date()): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const pad = (n: number) => String(n).padStart(2, "0");
  const time = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  const sameDay = d.toDateString() === now.toDateString();
  return sameDay ? time : `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${time}`;
}
