import { ErrorCodes, PvError } from '@pagevault/errors';

const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** "0", "500ms", "90s", "30m", "1h", "2d" (decimals allowed) in ms; anything else is PV_INVALID_ARGUMENT naming the option. */
export function parseDuration(text: string, option: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(text.trim());
  if (!m || (m[2] === undefined && Number(m[1]) !== 0)) {
    throw new PvError(ErrorCodes.INVALID_ARGUMENT, `${option} ${JSON.stringify(text)} is not a duration such as 90s, 30m, 1h or 2d (or 0)`);
  }
  return Math.round(Number(m[1]) * UNIT_MS[(m[2] ?? 'ms') as keyof typeof UNIT_MS]);
}
