import { randomBytes } from 'node:crypto';
import { rmSync, type Stats } from 'node:fs';
import { link, lstat, open, readdir, rename, rm, statfs, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { registerFrozen, unregisterFrozen, type Thawable } from '@pagevault/capture';
import { ErrorCodes, PvError } from '@pagevault/errors';
import { mkdirp } from '@pagevault/objstore';
import { identityScope, ownIdentity, processGone } from '@pagevault/repo';
import { outputError } from './output-file';

/**
 * Runs `write` against a fresh `path.partial-<writer>`, then moves it to `path`. On failure — or when
 * this process is killed by SIGINT/SIGTERM/SIGHUP — the partial file is removed (and what a writer killed
 * with SIGKILL left is removed by the next write to `path`: removeLeftovers), so `path` only ever
 * names a complete output, and two restores to one path never share a temporary file. An existing
 * `path` is refused before anything is written (and, should one appear meanwhile, at the end: the
 * partial file is linked to `path`, which fails if it exists), unless `replace`; one that is not a
 * regular file (a directory, a device such as /dev/null, a FIFO, a socket) is refused even then, since
 * the rename would put a plain file in its place.
 */
export function atomicFile<T>(path: string, fsync: boolean, write: (tmp: string) => Promise<T>, replace = false): Promise<T> {
  return writeAtomicFile(path, fsync, write, replace).catch((e: unknown) => Promise.reject(outputError(e, path, 'writing')));
}

/**
 * What atomicFile and atomicDir refuse before writing anything, for a caller that must answer first (a
 * service accepting a restore job): PV_INVALID_ARGUMENT for an output that exists (unless `replace`),
 * that is not a regular file (a directory for `directory`) even with `replace`, a directory output
 * holding files but not `marker` (not an earlier output: never replaced), or an output whose directory
 * does not exist.
 */
export async function checkOutput(path: string, kind: 'file' | 'directory', replace: boolean, marker?: string): Promise<void> {
  try {
    await checkOutputPath(path, kind, replace, marker);
  } catch (e) {
    throw outputError(e, path, 'checking');
  }
}

async function checkOutputPath(path: string, kind: 'file' | 'directory', replace: boolean, marker?: string): Promise<string[]> {
  await checkOutputName(path, kind);
  const st = await statOf(path);
  if (kind === 'file') {
    if (st && !st.isFile() && !st.isSymbolicLink()) throw notReplaceable(path, st, 'a regular file');
    if (st && !replace) throw existsError(path, 'file');
    if (!st) await readdir(dirname(path)); // ENOENT, ENOTDIR: the caller's path is wrong
    return [];
  }
  if (st && !st.isDirectory()) throw notReplaceable(path, st, 'a directory');
  if (!st) await readdir(dirname(path)); // as for a file: the output is created, its parents never are
  const existing = st ? await readdir(path) : [];
  if (existing.length > 0 && !replace) throw existsError(path, 'directory');
  if (existing.length > 0 && marker !== undefined && !existing.includes(marker)) {
    throw new PvError(ErrorCodes.INVALID_ARGUMENT, `output directory ${path} holds files but no ${marker}: it is not an earlier restore, and is never replaced, even when asked to`, { details: { path } });
  }
  return existing;
}

/** Kernel file systems whose files are interfaces, not storage (statfs f_type, linux/magic.h). */
const PSEUDO_FS: ReadonlyMap<number, string> = new Map([
  [0x9fa0, 'proc'], [0x62656572, 'sysfs'], [0x63677270, 'cgroup2'], [0x27e0eb, 'cgroup'], [0x64626720, 'debugfs'],
  [0x74726163, 'tracefs'], [0x73636673, 'securityfs'], [0x1cd1, 'devpts'], [0x6e736673, 'nsfs'], [0xcafe4a11, 'bpf'],
  [0x62656570, 'configfs'], [0xde5e81e4, 'efivarfs'], [0x6165676c, 'pstore'], [0xf97cff8c, 'selinuxfs'], [0x65735543, 'fusectl'],
]);

/**
 * Refuses, before anything is written, an output on a kernel pseudo-file system (/proc, /sys: writes
 * there are commands, not data) and one whose name leaves no room for its temporary sibling's suffix
 * (it could never be written: the sibling's name would pass NAME_MAX).
 */
async function checkOutputName(path: string, kind: 'file' | 'directory'): Promise<void> {
  const sibling = kind === 'directory' ? `.${basename(path)}.replaced-${writerTag()}` : `${basename(path)}.partial-${writerTag()}`; // the longest it writes
  if (Buffer.byteLength(sibling) > NAME_MAX) {
    throw new PvError(ErrorCodes.INVALID_ARGUMENT, `output ${path}: its name is too long to be written through a temporary sibling (${Buffer.byteLength(basename(path))} bytes; at most ${NAME_MAX - Buffer.byteLength(sibling) + Buffer.byteLength(basename(path))})`, { details: { path } });
  }
  const fs = await statfs(dirname(path)).then((s) => PSEUDO_FS.get(Number(s.type)), () => undefined); // a missing directory: checkOutputPath says so
  if (fs) throw new PvError(ErrorCodes.INVALID_ARGUMENT, `output ${path} is on ${fs}, a kernel interface file system, never an output`, { details: { path, fs } });
}

const NAME_MAX = 255;

async function writeAtomicFile<T>(path: string, fsync: boolean, write: (tmp: string) => Promise<T>, replace: boolean): Promise<T> {
  await removeLeftovers(path, 'file');
  await checkOutputPath(path, 'file', replace);
  const tmp = `${path}.partial-${writerTag()}`;
  const undo = removeOnExit(tmp);
  try {
    const out = await write(tmp);
    if (replace) await rename(tmp, path);
    else {
      await link(tmp, path).catch((e: NodeJS.ErrnoException) => Promise.reject(e.code === 'EEXIST' ? existsError(path, 'file') : e));
      await unlink(tmp);
    }
    if (fsync) await syncDir(dirname(path));
    return out;
  } catch (e) {
    await rm(tmp, { force: true }).catch(() => undefined);
    throw namingOutput(e, tmp, path);
  } finally {
    unregisterFrozen(undo);
  }
}

/**
 * Runs `write` in a fresh sibling directory of `dir`, then renames it to `dir`. An existing output is
 * never merged into: a non-empty `dir` is refused before anything is written, or with `replace` (and
 * holding `marker`, the file every such output has, when given) moved aside, replaced, and removed. On failure the temporary directory is removed (and a replaced `dir` put
 * back).
 */
export function atomicDir<T>(dir: string, fsync: boolean, write: (tmp: string) => Promise<T>, replace = false, marker?: string): Promise<T> {
  return writeAtomicDir(dir, fsync, write, replace, marker).catch((e: unknown) => Promise.reject(outputError(e, dir, 'writing')));
}

async function writeAtomicDir<T>(dir: string, fsync: boolean, write: (tmp: string) => Promise<T>, replace: boolean, marker: string | undefined): Promise<T> {
  await removeLeftovers(dir, 'directory');
  const existing = await checkOutputPath(dir, 'directory', replace, marker);
  const sibling = (what: string) => join(dirname(dir), `.${basename(dir)}.${what}-${writerTag()}`);
  const tmp = sibling('partial');
  const undo = removeOnExit(tmp);
  await mkdirp(tmp);
  try {
    const out = await write(tmp);
    if (fsync) await syncDir(tmp);
    const old = existing.length > 0 ? sibling('replaced') : undefined;
    if (old) await rename(dir, old);
    try {
      await rename(tmp, dir);
    } catch (e) {
      if (old) await rename(old, dir).catch(() => undefined);
      throw e;
    }
    if (fsync) await syncDir(dirname(dir));
    if (old) await rm(old, { recursive: true, force: true });
    return out;
  } catch (e) {
    await rm(tmp, { recursive: true, force: true }).catch(() => undefined);
    throw namingOutput(e, tmp, dir);
  } finally {
    unregisterFrozen(undo);
  }
}

/**
 * An error met writing the temporary `tmp` (a full or read-only disk), told of the output the user
 * named: the temporary name is gone once the write failed, and means nothing to them.
 */
function namingOutput(e: unknown, tmp: string, out: string): unknown {
  if (!(e instanceof PvError) || !e.message.includes(tmp)) return e;
  const details = { ...e.details, ...(typeof e.details['path'] === 'string' ? { path: e.details['path'].replace(tmp, out) } : {}) };
  return new PvError(e.code, e.message.split(tmp).join(out), { cause: e.cause ?? e, retriable: e.retriable, details });
}

/**
 * `<scope>-<pid>-<start ticks>-<random>`: who writes a temporary output (identityScope: this boot and
 * pid namespace), so that the next write to the same output can tell the leftovers of a writer killed
 * with SIGKILL from those of one still writing. `x-<random>` where /proc does not tell who we are.
 */
function writerTag(): string {
  const me = ownIdentity();
  const scope = identityScope();
  const who = me && scope ? `${scope}-${process.pid}-${me.startTicks}-` : 'x-';
  return who + randomBytes(4).toString('hex');
}

const TAG = /^([0-9a-f]{8})-(\d+)-(\d+)-[0-9a-f]{8}$/;

/**
 * Removes what writers of `path` that died without their signal handlers (SIGKILL, the OOM killer)
 * left beside it: their temporary outputs, and for a directory the earlier output it had moved aside to
 * replace (put back when `path` is missing: killed between its two renames). Only writers of this boot
 * and pid namespace are judged, by pid and start time; those elsewhere (a shared file system) or still
 * running are left alone.
 */
async function removeLeftovers(path: string, kind: 'file' | 'directory'): Promise<void> {
  const scope = identityScope();
  if (!scope) return;
  const parent = dirname(path);
  const names = await readdir(parent).catch(() => [] as string[]); // a missing parent is checkOutputPath's to report
  const prefixes = kind === 'file' ? { partial: `${basename(path)}.partial-` } : { partial: `.${basename(path)}.partial-`, replaced: `.${basename(path)}.replaced-` };
  const dead = names.flatMap((name) => {
    const [what, prefix] = Object.entries(prefixes).find(([, p]) => name.startsWith(p)) ?? [];
    const m = prefix === undefined ? null : TAG.exec(name.slice(prefix.length));
    if (!m || m[1] !== scope || !processGone(Number(m[2]), m[3]!)) return [];
    return [{ name, what, writer: `${m[2]}-${m[3]}` }];
  });
  for (const { name, what, writer } of dead) {
    const left = join(parent, name);
    // Put back only when the writer died between its two renames: its new output (the partial) is still
    // there. Without it the new output had replaced this one, and a missing output is the user's doing.
    const between = what === 'replaced' && dead.some((d) => d.what === 'partial' && d.writer === writer);
    try {
      if (between && !(await statOf(path))) await rename(left, path);
      else await rm(left, { recursive: true, force: true });
    } catch {
      // Best effort: another restore may be clearing the same leftovers; this one goes on.
    }
  }
}

/**
 * A temporary output is undone like a frozen target: the CLI's and the services' signal and exit
 * handlers (installThawOnSignals) run it synchronously before the process dies.
 */
function removeOnExit(tmp: string): Thawable {
  const undo = { thaw: () => rmSync(tmp, { recursive: true, force: true }) };
  registerFrozen(undo);
  return undo;
}

async function statOf(path: string): Promise<Stats | undefined> {
  return lstat(path).catch((e: NodeJS.ErrnoException) => (e.code === 'ENOENT' ? undefined : Promise.reject(e)));
}

function notReplaceable(path: string, st: Stats, wanted: string): PvError {
  const kind = st.isDirectory() ? 'a directory' : st.isCharacterDevice() ? 'a character device' : st.isBlockDevice() ? 'a block device'
    : st.isFIFO() ? 'a FIFO' : st.isSocket() ? 'a socket' : 'a file';
  return new PvError(ErrorCodes.INVALID_ARGUMENT, `output ${path} is ${kind}, not ${wanted}: it is never replaced, even when asked to`, { details: { path } });
}

function existsError(path: string, what: 'file' | 'directory'): PvError {
  const why = what === 'file' ? 'exists' : 'exists and is not empty';
  return new PvError(ErrorCodes.INVALID_ARGUMENT, `output ${what} ${path} ${why} (not replaced unless asked to)`, { details: { path } });
}

async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
