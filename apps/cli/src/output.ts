import { exactJson } from '@pagevault/errors';

/** Terminal output: tables for people, JSON for scripts, progress only when stderr is a terminal. */
export function printTable(rows: Record<string, unknown>[], columns?: string[]): void {
  if (rows.length === 0) {
    process.stdout.write('(none)\n');
    return;
  }
  const cols = columns ?? [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const cells = rows.map((r) => cols.map((c) => String(r[c] ?? '')));
  const width = cols.map((c, i) => Math.max(c.length, ...cells.map((r) => r[i]!.length)));
  const line = (vals: string[]) => vals.map((v, i) => (/^[\d.,]+( [A-Za-z/]+)?%?x?$/.test(v) ? v.padStart(width[i]!) : v.padEnd(width[i]!))).join('  ').trimEnd();
  process.stdout.write([line(cols), line(width.map((w) => '-'.repeat(w))), ...cells.map(line)].join('\n') + '\n');
}

export function printJson(v: unknown): void {
  process.stdout.write(exactJson(v, 2) + '\n');
}

export function bytes(n: number): string {
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n.toFixed(i ? 1 : 0)} ${u[i]}`;
}

/** A one-line progress bar on stderr, drawn at most 10 times a second, and only on a terminal. */
export class Progress {
  private last = 0;
  private readonly on = process.stderr.isTTY === true;

  constructor(private readonly label: string) {}

  update(done: number, total: number): void {
    if (!this.on) return;
    const now = Date.now();
    if (now - this.last < 100 && done < total) return;
    this.last = now;
    const f = total > 0 ? Math.min(1, done / total) : 0;
    const bar = '#'.repeat(Math.round(f * 30)).padEnd(30, '.');
    process.stderr.write(`\r${this.label} [${bar}] ${(f * 100).toFixed(0)}% ${done}/${total}`);
  }

  done(): void {
    if (this.on && this.last) process.stderr.write('\n');
  }
}
