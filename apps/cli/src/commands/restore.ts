import { realpathSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve, sep } from 'node:path';
import type { Command } from 'commander';
import { captureSnapshot } from '@pagevault/capture';
import { ErrorCodes, PvError } from '@pagevault/errors';
import { SnapshotWriter, frameSealer, idFromHex, newSnapshotId, idToHex } from '@pagevault/format';
import {
  FrameAppender, atomicFile, openOutputFile, restoreSnapshot, writeElfCore, writeLiveProcess, writeRawImages, writeStream, type FileOutputOptions, type OutputStats,
} from '@pagevault/restore';
import { resolveSnapshot, type Manifest, type TenantStore } from '@pagevault/repo';
import { leftOut, openContext, type Context, type GlobalOptions } from '../context';
import { Progress, printJson, printTable } from '../output';
import { pidOf, thawAbandoned } from './snapshot';

export type RestoreFormat = 'stream' | 'raw' | 'elf' | 'live';

/** Restores a snapshot to one of the four outputs; nothing that looks complete is left on failure. */
export async function restoreTo(t: TenantStore, m: Manifest, format: RestoreFormat, out: string, o: Pick<FileOutputOptions, 'replace' | 'onMissingFile' | 'localHost' | 'fillUntouchedFromFile'> = {}): Promise<OutputStats> {
  const bar = new Progress(`restore ${m.snapshotId.slice(0, 12)} → ${format}`);
  const frames = restoreSnapshot(t, m, { onProgress: (d, n) => bar.update(d, n) });
  try {
    switch (format) {
      case 'stream':
        return await writeStream(frames, out, o);
      case 'raw':
        return await writeRawImages(frames, out, o);
      case 'elf':
        return await writeElfCore(frames, out, o);
      case 'live': {
        const pid = Number(out);
        if (!Number.isInteger(pid) || pid <= 0) throw new PvError(ErrorCodes.INVALID_ARGUMENT, `restore --format live needs --out <pid>, got ${out}`);
        return await writeLiveProcess(frames, pid, { ...o, layout: m.vmas });
      }
    }
  } finally {
    bar.done();
  }
}

/**
 * Writes a direct full dump of a process to a stream-format file: no log, no store. The reference for
 * byte-identity. Written as `out.partial-<random>` and moved to `out` once complete (an existing `out` is refused
 * unless `replace`), so a dump that fails leaves nothing.
 */
export async function dumpProcess(pid: number, out: string, o: { id?: string; timeMs?: number; tenant: string; host: string; replace?: boolean }): Promise<{ snapshotId: string; frames: number; bytes: number }> {
  const id = o.id ? idFromHex(o.id) : newSnapshotId();
  let frames = 0;
  let bytes = 0;
  await atomicFile(out, false, async (tmp) => {
    const fh = await openOutputFile(tmp, { fsync: false, direct: false });
    const file = new FrameAppender(fh);
    let pending: Buffer[] = [];
    const writer = new SnapshotWriter({ snapshotId: id, sealer: frameSealer(), emit: (f) => (pending.push(f), frames++, (bytes += f.length)) });
    const drain = async () => {
      const b = pending;
      pending = [];
      for (const f of b) await file.append(f);
    };
    try {
      await captureSnapshot({ pid, writer, drain, tenant: o.tenant, host: o.host, ...(o.timeMs !== undefined ? { startTimeMs: o.timeMs } : {}) });
      await drain();
      await file.flush();
      await fh.finish();
    } catch (e) {
      await fh.abandon();
      throw e;
    }
  }, o.replace);
  return { snapshotId: idToHex(id), frames, bytes };
}

export function registerRestoreCommands(program: Command, globals: () => GlobalOptions): void {
  program.command('restore <snapshot>').description('restore a snapshot: stream file, raw images, ELF core, or into a live process')
    .requiredOption('--format <format>', 'stream | raw | elf | live')
    .requiredOption('--out <path>', 'output file (stream, elf), directory (raw), or pid (live)')
    .option('--force', 'replace an existing output file, or a directory with anything in it')
    .option('--allow-missing-files', "leave out (zeros) the pages of mapped files that are gone, shorter or replaced, instead of failing")
    .option('--no-fill-from-files', "elf: leave a mapped file's pages the process never touched as zeros, instead of reading them from the file")
    .action(async (ref: string, o: { format: RestoreFormat; out: string; force?: boolean; allowMissingFiles?: boolean; fillFromFiles: boolean }) => {
      if (!['stream', 'raw', 'elf', 'live'].includes(o.format)) throw new PvError(ErrorCodes.INVALID_ARGUMENT, `unknown format ${o.format}`);
      const ctx = openContext(globals());
      if (o.format !== 'live') checkOutputPath(ctx, o.out);
      else thawAbandoned();
      const t = await ctx.tenant();
      const m = await resolveSnapshot(t, ref, {}, leftOut);
      const r = await restoreTo(t, m, o.format, o.out, {
        replace: o.force === true, onMissingFile: o.allowMissingFiles ? 'allow' : 'fail', localHost: ctx.host, ...(o.format === 'elf' ? { fillUntouchedFromFile: o.fillFromFiles } : {}),
      });
      const left = o.format === 'live' ? "the target's own" : 'zeros';
      for (const f of r.missingFiles) process.stderr.write(`pagevault: warning: ${f.pages} page(s) of ${f.path} left out (${left}): it ${f.reason}\n`);
      if (ctx.json) printJson({ snapshotId: m.snapshotId, format: o.format, out: o.out, ...r });
      else printTable([{ snapshot: m.snapshotId, format: o.format, out: o.out, ...flat({ ...r }) }]);
    });

  program.command('dump <pid>').description('write a direct full dump of a process to a stream file (no pipeline)')
    .requiredOption('--out <file>', 'stream-format file to write')
    .option('--id <hex>', 'snapshot id to use (32 hex digits)')
    .option('--time <ms>', 'start time to record, ms since the epoch')
    .option('--force', 'replace an existing file')
    .action(async (p: string, o: { out: string; id?: string; time?: string; force?: boolean }) => {
      const ctx = openContext(globals());
      const pid = pidOf(p, 'not a pid');
      if (o.id !== undefined && !/^[0-9a-f]{32}$/i.test(o.id)) throw new PvError(ErrorCodes.INVALID_ARGUMENT, `--id must be 32 hex digits, got ${o.id}`);
      if (o.time !== undefined && !/^\d+$/.test(o.time)) throw new PvError(ErrorCodes.INVALID_ARGUMENT, `--time must be milliseconds since the epoch, got ${o.time}`);
      checkOutputPath(ctx, o.out);
      const r = await dumpProcess(pid, o.out, { tenant: ctx.tenantName, host: ctx.host, replace: o.force === true, ...(o.id ? { id: o.id.toLowerCase() } : {}), ...(o.time ? { timeMs: Number(o.time) } : {}) });
      if (ctx.json) printJson(r);
      else printTable([r]);
    });
}

/**
 * An output path must name something, and nothing in the embedded repository: a restore with --force
 * onto the store directory (or a file in it, or a directory holding it) would replace the repository it
 * is reading. Paths are compared with their links resolved, and directories by device and inode, so
 * that another name for the same directory (a bind mount) is caught as well.
 */
export function checkOutputPath(ctx: Context, out: string): void {
  if (out.trim() === '') throw new PvError(ErrorCodes.INVALID_ARGUMENT, '--out must name a file or directory');
  if (ctx.storeConfig.kind !== 'dir') return;
  const store = real(resolve(ctx.storeConfig.dir));
  const target = real(resolve(out));
  const within = (a: string, b: string) => a === b || a.startsWith(b.endsWith(sep) ? b : b + sep);
  const storeId = identity(store);
  const targetId = identity(target);
  const sameOrUnder = (path: string, id: string | undefined) => id !== undefined && existingAncestors(path).includes(id);
  if (within(target, store) || within(store, target) || sameOrUnder(target, storeId) || sameOrUnder(store, targetId)) {
    throw new PvError(ErrorCodes.INVALID_ARGUMENT, `output ${out} overlaps the repository ${ctx.storeConfig.dir}: restore somewhere else`, { details: { out, store: ctx.storeConfig.dir } });
  }
}

/** Device and inode of what a path names, or undefined if nothing is there. */
function identity(path: string): string | undefined {
  try {
    const st = statSync(path, { bigint: true });
    return `${st.dev}:${st.ino}`;
  } catch {
    return undefined;
  }
}

/** The identities of the path and of every directory above it that exists. */
function existingAncestors(path: string): string[] {
  const ids: string[] = [];
  for (let p = path; ; p = dirname(p)) {
    const id = identity(p);
    if (id !== undefined) ids.push(id);
    if (dirname(p) === p) return ids;
  }
}

/** The path with its existing part's symbolic links resolved (the rest may not exist yet). */
function real(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    const parent = dirname(path);
    return parent === path ? path : join(real(parent), basename(path));
  }
}

/** The scalar fields of a result, for a table: a fraction (a time in ms) to one decimal. */
function flat(r: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(r)
      .filter(([, v]) => typeof v !== 'object')
      .map(([k, v]) => [k, typeof v === 'number' && !Number.isInteger(v) ? Number(v.toFixed(1)) : v]),
  );
}
