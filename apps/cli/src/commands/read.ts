import { statSync } from 'node:fs';
import { hostname } from 'node:os';
import type { Command } from 'commander';
import { ErrorCodes, PvError, isPvError } from '@pagevault/errors';
import {
  PageKind, addTags, checkStore, listSnapshots, readPageMap, readTags, removeTags, resolveSnapshot, snapshotFilter, type Manifest, type PageList, type TenantStore,
} from '@pagevault/repo';
import { kindName, mappedFileProblem, perms, restoreFrames, vmaNote } from '@pagevault/restore';
import { leftOut, openContext, type GlobalOptions } from '../context';
import { Progress, bytes, printJson, printTable } from '../output';

/** What verify reports per snapshot and goes on: the snapshot's data is missing or damaged (not the store failing). */
const isFinding = (code: string): boolean =>
  code === ErrorCodes.OBJECT_NOT_FOUND || code === ErrorCodes.OBJECT_CORRUPT || code === ErrorCodes.PAGE_HASH_MISMATCH ||
  code === ErrorCodes.PARENT_MISSING || code.startsWith('PV_FRAME_') || code.startsWith('PV_STREAM_');

/** One snapshot for scripts: numbers as numbers, the parent's full id, tags as a list. */
export function jsonSummary(m: Manifest & { tags?: string[] }): Record<string, unknown> {
  const c = m.counts;
  return {
    id: m.snapshotId, time: new Date(m.startTimeMs).toISOString(), host: m.host, pid: m.pid, mode: m.mode,
    consistency: m.consistency, vmas: c.vmas, data: c.dataPages, zero: c.zeroPages, file: c.filePages,
    logicalBytes: (c.dataPages + c.zeroPages) * m.pageSize, storedBytes: c.newBytes, parent: m.parentId ?? null,
    ...(m.groupId ? { groupId: m.groupId } : {}), ...(m.tags ? { tags: m.tags } : {}),
  };
}

/** One snapshot for people: sizes in units, the parent's id shortened, tags joined. */
export function summary(m: Manifest & { tags?: string[] }): Record<string, unknown> {
  const c = m.counts;
  return {
    id: m.snapshotId, time: new Date(m.startTimeMs).toISOString(), host: m.host, pid: m.pid, mode: m.mode,
    consistency: m.consistency, vmas: c.vmas, data: c.dataPages, zero: c.zeroPages, file: c.filePages,
    logical: bytes((c.dataPages + c.zeroPages) * m.pageSize), stored: bytes(c.newBytes), parent: m.parentId?.slice(0, 12) ?? '',
    ...(m.tags ? { tags: m.tags.join(',') } : {}),
  };
}

export function registerReadCommands(program: Command, globals: () => GlobalOptions): void {
  program.command('ls').description('list snapshots').option('--pid <pid>', 'only this pid').option('--on-host <host>', 'only this host')
    .option('--tag <tag>', 'only snapshots with this tag')
    .action(async (o: { pid?: string; onHost?: string; tag?: string }) => {
      const ctx = openContext(globals());
      ctx.requireStore();
      const unreadable: PvError[] = [];
      const ms = await listSnapshots(await ctx.tenant(), snapshotFilter({ host: o.onHost, pid: o.pid, tag: o.tag }), (e) => unreadable.push(e));
      if (ctx.json) printJson(ms.map(jsonSummary));
      else printTable(ms.map(summary));
      // The others are listed; a damaged manifest still fails the command (exit 4), named.
      if (unreadable.length > 0) throw new PvError(ErrorCodes.OBJECT_CORRUPT, unreadable.map((e) => e.message).join('; '), { details: { keys: unreadable.map((e) => e.details['key']) } });
    });

  program.command('tag <snapshot> <tags...>').description('add tags to a snapshot (or remove them with --remove)')
    .option('--remove', 'remove the tags instead')
    .action(async (ref: string, tags: string[], o: { remove?: boolean }) => {
      const ctx = openContext(globals());
      const t = await ctx.tenant();
      const m = await resolveSnapshot(t, ref, {}, leftOut);
      await (o.remove ? removeTags(t, m.snapshotId, tags) : addTags(t, m.snapshotId, tags));
      const now = (await readTags(t)).get(m.snapshotId) ?? [];
      if (ctx.json) printJson({ snapshotId: m.snapshotId, tags: now });
      else process.stdout.write(`${m.snapshotId}: ${now.join(', ') || '(no tags)'}\n`);
    });

  program.command('show <snapshot>').description('show a snapshot and its VMAs').action(async (ref: string) => {
    const ctx = openContext(globals());
    const m = await resolveSnapshot(await ctx.tenant(), ref, {}, leftOut);
    if (ctx.json) return printJson(m);
    printTable([summary(m)]);
    process.stdout.write('\n');
    printTable(m.vmas.map((v) => ({
      index: v.index, start: v.start.toString(16), end: v.end.toString(16), perms: perms(v), kind: kindName(v.kind), data: v.pages.data,
      zero: v.pages.zero, file: v.pages.file, path: v.path, note: vmaNote(v),
    })));
  });

  program.command('diff <a> <b>').description('which VMAs and how many pages changed between two snapshots').action(async (ra: string, rb: string) => {
    const ctx = openContext(globals());
    const t = await ctx.tenant();
    const [a, b] = [await resolveSnapshot(t, ra, {}, leftOut), await resolveSnapshot(t, rb, {}, leftOut)];
    const rows = await diffSnapshots(t, a, b);
    // Addresses are numbers in JSON, as `show --json` gives them, and hex in the table.
    if (ctx.json) printJson({ a: a.snapshotId, b: b.snapshotId, vmas: rows });
    else printTable(rows.map((r) => ({ ...r, start: r.start.toString(16) })));
  });

  program.command('verify [snapshots...]').description('check every referenced object exists and every page matches its hash (like restic check --read-data)')
    .action(async (refs: string[]) => {
      const ctx = openContext(globals());
      ctx.requireStore();
      const t = await ctx.tenant();
      const { manifests: ms, unreadable } = refs.length ? { manifests: await Promise.all(refs.map((r) => resolveSnapshot(t, r, {}, leftOut))), unreadable: [] } : await t.readManifests();
      // Like restic check: every snapshot is checked and reported, and any failure fails the command.
      const results: { id: string; pagesVerified: number; ok: boolean; error?: string; filePagesUnavailable?: number }[] = [];
      const failures: { id: string; e: PvError }[] = unreadable.map((e) => ({ id: String(e.details['snapshot'] ?? e.details['key']), e }));
      // Damaged index files too: their pages look missing to every reader until repair-index replaces them.
      for (const e of t.damagedIndexes) failures.push({ id: String(e.details['key']), e });
      for (const f of failures) results.push({ id: f.id, pagesVerified: 0, ok: false, error: f.e.code });
      // A whole-store verify reads every stored byte once (checkStore); only when it finds something a
      // snapshot reaches missing or damaged are the snapshots read one by one, to say which it breaks.
      const packRows: typeof results = [];
      const packFailures: typeof failures = [];
      let oneByOne = true;
      if (refs.length === 0) {
        const bar = new Progress('verify store');
        try {
          const check = await checkStore(t, ms, (d, n) => bar.update(d, n), { keepBytes: ctx.verifyKeepBytes });
          for (const e of check.damaged) {
            packFailures.push({ id: String(e.details['key']), e });
            packRows.push({ id: String(e.details['key']), pagesVerified: 0, ok: false, error: e.code });
          }
          oneByOne = check.incomplete;
          if (!ctx.json) {
            const again = [check.passes > 1 ? `${check.passes - 1} more pass(es) over the packs holding delta pages whose bases did not fit in memory` : '', check.deltasFetched ? `${check.deltasFetched} delta page(s) read again with their bases` : ''].filter(Boolean).join('; ');
            process.stderr.write(`pagevault: read ${check.objects} pack(s), ${bytes(check.bytes)}, once: ${check.pages} distinct page(s) checked${again ? ` (${again})` : ''}${check.unchecked ? `, ${check.unchecked} not (in damaged or missing objects)` : ''}, ${check.damaged.length} damaged object(s)${oneByOne ? '; reading the snapshots one by one to find what is broken' : ''}\n`);
          }
        } finally {
          bar.done();
        }
      }
      for (const m of ms) {
        if (!oneByOne) {
          const pages = m.vmas.reduce((n, v) => n + v.pages.data, 0);
          results.push({ id: m.snapshotId, pagesVerified: pages, ok: true, filePagesUnavailable: await referencedFiles(t, m, ctx.host) });
          continue;
        }
        const bar = new Progress(`verify ${m.snapshotId.slice(0, 12)}`);
        let pages = 0;
        try {
          for await (const f of restoreFrames(t, m, { onProgress: (d, n) => bar.update(d, n) })) if (f.body.type === 3) pages += f.body.addresses.length;
          results.push({ id: m.snapshotId, pagesVerified: pages, ok: true, filePagesUnavailable: await referencedFiles(t, m, ctx.host) });
        } catch (e) {
          if (!isPvError(e) || !isFinding(e.code)) throw e; // the store itself failing is no finding
          failures.push({ id: m.snapshotId, e });
          results.push({ id: m.snapshotId, pagesVerified: pages, ok: false, error: e.code });
        } finally {
          bar.done();
        }
      }
      results.push(...packRows);
      failures.push(...packFailures);
      if (ctx.json) printJson(results);
      else printTable(results);
      if (failures.length > 0) {
        const first = failures[0]!.e;
        const all = failures.map((f) => `${f.id}: ${f.e.code}: ${f.e.message}`).join('; ');
        const hint = t.damagedIndexes.length ? '; `pagevault repair-index` rebuilds the damaged index files from the packs' : '';
        throw new PvError(first.code, `${failures.length} of ${results.length} checked failed verification: ${all}${hint}`, { details: { snapshots: failures.map((f) => f.id) } });
      }
    });
}

/**
 * The pages a snapshot references in mapped files that could not be read from them here (see
 * mappedFileProblem), each file named in one warning (a file mapped by several VMAs: their pages added up):
 * the store holds everything of the snapshot, but a raw, ELF or live restore of it here would fail (or,
 * allowed, leave those pages out).
 */
async function referencedFiles(t: TenantStore, m: Manifest, localHost: string): Promise<number> {
  let unavailable = 0;
  const byFile = new Map<string, { pages: number; vmas: number }>();
  const modified = new Map<string, number>();
  for (const v of m.vmas) {
    if (v.pages.file === 0) continue;
    const problem = await mappedFileProblem(v, m, { localHost }, v.map ? lastFilePage(await readPageMap(v.map, m.pageSize, t.loadNode), m.pageSize) : undefined);
    if (!problem) {
      if (m.host === localHost || m.host === hostname()) modifiedSince(v.path, m, modified);
      continue;
    }
    unavailable += v.pages.file;
    const key = `${v.path}, which ${problem}`;
    const f = byFile.get(key) ?? { pages: 0, vmas: 0 };
    byFile.set(key, { pages: f.pages + v.pages.file, vmas: f.vmas + 1 });
  }
  for (const [what, f] of byFile) {
    const where = f.vmas > 1 ? ` (in ${f.vmas} VMAs)` : '';
    process.stderr.write(`pagevault: warning: snapshot ${m.snapshotId} references ${f.pages} page(s)${where} of ${what}: restoring them here needs --allow-missing-files\n`);
  }
  for (const [path, mtime] of modified) {
    process.stderr.write(`pagevault: warning: snapshot ${m.snapshotId} references pages of ${path}, modified since the snapshot was taken (${new Date(mtime).toISOString()}): the same file (device and inode), but the pages a restore reads from it may not be the ones the process had (a program rebuilt in place keeps its inode)\n`);
  }
  return unavailable;
}

/**
 * Notes the mapped file of a snapshot's VMA in `out` when it was modified after the snapshot was taken.
 * Version 1 of the format records no size or modification time of a file (docs/format.md, known gaps):
 * a file written in place since keeps its device and inode, and nothing else can tell.
 */
function modifiedSince(path: string, m: Manifest, out: Map<string, number>): void {
  if (!path.startsWith('/') || out.has(path)) return;
  try {
    const st = statSync(path);
    if (st.isFile() && st.mtimeMs > m.startTimeMs) out.set(path, st.mtimeMs);
  } catch {
    // gone or unreadable: mappedFileProblem has said so
  }
}

/** The address of the last page a VMA's page map takes from its file (a file run), or undefined. */
function lastFilePage(list: PageList, pageSize: number): number | undefined {
  let last: number | undefined;
  for (let i = 0; i < list.n; i++) {
    if (list.kinds[i] === PageKind.File) last = Math.max(last ?? 0, list.starts[i]! + (list.counts[i]! - 1) * pageSize);
  }
  return last;
}

/**
 * Per VMA (matched by start address): pages whose content differs, appeared, or disappeared. A page no
 * snapshot touched reads as zeros, so it equals a zero page: the count is of pages whose contents
 * differ, the same from a to b as from b to a.
 */
interface DiffRow {
  start: number;
  path: string;
  /** remapped: another file (or offset) mapped over the same start. */
  status: 'added' | 'removed' | 'changed' | 'resized' | 'remapped';
  changed: number;
}

async function diffSnapshots(t: TenantStore, a: Manifest, b: Manifest): Promise<DiffRow[]> {
  const rows: DiffRow[] = [];
  const byStart = new Map(a.vmas.map((v) => [v.start, v]));
  for (const vb of b.vmas) {
    const va = byStart.get(vb.start);
    byStart.delete(vb.start);
    if (!va) {
      rows.push({ start: vb.start, path: vb.path, status: 'added', changed: vb.pages.data + vb.pages.zero });
      continue;
    }
    // A file page is the same page only in the same file at the same offset: a VMA mapping another file
    // over the same range (MAP_FIXED) has changed even where both page maps say "file".
    const sameBacking = va.path === vb.path && va.dev === vb.dev && va.inode === vb.inode && va.pgoff === vb.pgoff;
    if (va.map?.sha === vb.map?.sha && va.end === vb.end && sameBacking) continue;
    const [la, lb] = await Promise.all([va, vb].map((v) => (v.map ? readPageMap(v.map, b.pageSize, t.loadNode) : undefined)));
    const oa = la?.order('diff');
    const ob = lb?.order('diff');
    let changed = 0;
    // Pages of b against a; then pages of a that b does not have (untouched there: zeros).
    if (lb && ob) {
      for (const i of ob) {
        for (let k = 0; k < lb.counts[i]!; k++) {
          const addr = lb.starts[i]! + k * b.pageSize;
          const hit = la && oa ? la.lookup(addr, oa) : undefined;
          const kindA = hit?.kind ?? PageKind.Zero;
          const same = kindA === lb.kinds[i] && (kindA !== PageKind.File || sameBacking) && (kindA !== PageKind.Data || la!.hashes.compare(lb.hashes, lb.hashAt[i]! + k * 32, lb.hashAt[i]! + k * 32 + 32, hit!.hashOffset, hit!.hashOffset + 32) === 0);
          if (!same) changed++;
        }
      }
    }
    if (la && oa) {
      for (const i of oa) {
        if (la.kinds[i] === PageKind.Zero) continue;
        for (let k = 0; k < la.counts[i]!; k++) if (!(lb && ob && lb.lookup(la.starts[i]! + k * a.pageSize, ob))) changed++;
      }
    }
    rows.push({ start: vb.start, path: vb.path, status: !sameBacking ? 'remapped' : va.end === vb.end ? 'changed' : 'resized', changed });
  }
  for (const va of byStart.values()) rows.push({ start: va.start, path: va.path, status: 'removed', changed: va.pages.data + va.pages.zero });
  return rows;
}
