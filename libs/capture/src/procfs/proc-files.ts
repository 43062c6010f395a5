import { readdirSync, readFileSync } from 'node:fs';
import { ErrorCodes, PvError } from '@pagevault/errors';
import { MAX_STRING_BYTES } from '@pagevault/format';

export function errnoOf(e: unknown): string | undefined {
  return typeof e === 'object' && e !== null && 'code' in e && typeof e.code === 'string'
    ? e.code
    : undefined;
}

/**
 * Maps an error from a /proc/PID access to a PvError naming the pid. `seen` tells whether the process
 * was already known to exist: a vanished /proc entry then means it exited, not that it never was.
 */
export function procError(e: unknown, pid: number, what: string, seen: boolean): PvError {
  if (e instanceof PvError) return e;
  const code = errnoOf(e);
  const details = { pid, errno: code, file: what };
  if (code === 'ENOENT' || code === 'ESRCH') {
    return seen
      ? new PvError(ErrorCodes.PROCESS_EXITED, `process ${pid} exited (reading ${what})`, {
          cause: e,
          details,
        })
      : new PvError(ErrorCodes.NO_SUCH_PROCESS, `no process with pid ${pid}`, { cause: e, details });
  }
  if (code === 'EACCES' || code === 'EPERM') {
    return new PvError(
      ErrorCodes.PERMISSION_DENIED,
      `cannot read ${what} of process ${pid} (${code}): the agent needs CAP_SYS_PTRACE or the same user as the target`,
      { cause: e, details },
    );
  }
  return new PvError(ErrorCodes.READ_FAILED, `cannot read ${what} of process ${pid}: ${String(e)}`, {
    cause: e,
    details,
  });
}

/** Reads /proc/PID/<name> as text, mapping errors to PvErrors. */
export function readProcText(pid: number, name: string, seen = true): string {
  try {
    return readFileSync(`/proc/${pid}/${name}`, 'utf8');
  } catch (e) {
    throw procError(e, pid, `/proc/${pid}/${name}`, seen);
  }
}

/** Thread ids of a process (its /proc/PID/task entries). */
export function listThreads(pid: number, seen = true): number[] {
  try {
    return readdirSync(`/proc/${pid}/task`).map(Number).filter(Number.isInteger);
  } catch (e) {
    throw procError(e, pid, `/proc/${pid}/task`, seen);
  }
}

/** True when /proc/PID exists and the process is not a zombie. */
export function isAlive(pid: number): boolean {
  try {
    return parseStatState(readFileSync(`/proc/${pid}/stat`, 'utf8')) !== 'Z';
  } catch {
    return false;
  }
}

/** PF_EXITING in /proc/PID/stat's flags (field 9): the process is exiting, its memory going or gone. */
export function isExiting(pid: number): boolean {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return true; // gone meanwhile
  }
  return (Number(statFields(stat)[6]) & 0x4) !== 0;
}

/**
 * The fields of a /proc/PID/stat line after the command name (which is in parentheses and may itself
 * hold ") "): [0] state, [1] ppid, ... [6] flags, ... [11] utime, ... [19] starttime.
 */
export function statFields(stat: string): string[] {
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** The state letter of a /proc/PID/stat (or task/TID/stat) line: R, S, D, T, t, Z, X, I... */
export function parseStatState(stat: string): string {
  // comm is in parentheses and may itself contain ") ", so the state follows the last ')'.
  const close = stat.lastIndexOf(')');
  if (close < 0 || stat.length < close + 3) throw new SyntaxError(`not a stat line: ${JSON.stringify(stat)}`);
  return stat[close + 2];
}

/** Parses /proc/PID/status into its "Key:\tvalue" fields. */
export function parseStatus(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon > 0) out[line.slice(0, colon)] = line.slice(colon + 1).trim();
  }
  return out;
}

/**
 * /proc/PID/cmdline as stored in the stream: arguments joined by NUL, without the trailing NUL, cut to
 * the format's longest string (65535 bytes of UTF-8, at a character's start): a long Java class path
 * is a legal command line, and a snapshot of its process must not fail for it.
 */
export function parseCmdline(raw: string): string {
  const s = raw.endsWith('\0') ? raw.slice(0, -1) : raw;
  if (s.length <= MAX_STRING_BYTES / 3) return s; // fits whatever its characters
  const b = Buffer.from(s, 'utf8');
  if (b.length <= MAX_STRING_BYTES) return s;
  let end = MAX_STRING_BYTES;
  while (end > 0 && (b[end]! & 0xc0) === 0x80) end--; // not inside a character
  return b.toString('utf8', 0, end);
}
