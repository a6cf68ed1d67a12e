// Fixed-width text helpers for the views (every column is sized by the view, not by Yoga,
// so a table never reflows while numbers grow).

/** Cuts `s` to `width` columns, marking a cut with an ellipsis. */
export function clip(s: string, width: number): string {
  if (width <= 0) return '';
  if (s.length <= width) return s;
  return width === 1 ? '…' : `${s.slice(0, width - 1)}…`;
}

export function padRight(s: string, width: number): string {
  return clip(s, width).padEnd(width);
}

export function padLeft(s: string, width: number): string {
  return clip(s, width).padStart(width);
}

/** `HH:MM:SS.mmm` in local time. */
export function clock(at: number): string {
  const d = new Date(at);
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

export function num(n: number | undefined): string {
  return n === undefined ? '-' : String(n);
}

export function nodeName(id: number): string {
  return id === 0 ? '-' : `n${id}`;
}
