import type { Command } from 'commander';
import { ErrorCodes, PvError, isPvError } from '@pagevault/errors';
import {
  beyondKeepLast, describeLocks, forgetSnapshots, prune, repairIndex, resolveSnapshot, type LockEntry, type Manifest, type PruneReport,
} from '@pagevault/repo';
import { leftOut, openContext, type GlobalOptions } from '../context';
import { parseDuration } from '../duration';
import { bytes, printJson, printTable } from '../output';
import { summary } from './read';

export function registerPruneCommands(program: Command, globals: () => GlobalOptions): void {
  program.command('forget [snapshots...]').description('remove snapshots (manifest and tags); `prune` then reclaims what only they used')
    .option('--keep-last <n>', 'instead of naming snapshots: forget, for each host and pid, all but the newest n')
    .option('--dry-run', 'list what would be forgotten, remove nothing')
    .action(async (refs: string[], o: { keepLast?: string; dryRun?: boolean }) => {
      if (refs.length === 0 && o.keepLast === undefined) throw new PvError(ErrorCodes.INVALID_ARGUMENT, 'name snapshots to forget, or --keep-last <n>');
      if (o.keepLast !== undefined && !/^\d+$/.test(o.keepLast)) throw new PvError(ErrorCodes.INVALID_ARGUMENT, `--keep-last must be a number of snapshots, not ${JSON.stringify(o.keepLast)}`);
      // Together they read both ways (forget these, keeping the last n? or these and all but the last n?):
      // asked for one, the user got the other and lost a snapshot meant to be kept.
      if (refs.length > 0 && o.keepLast !== undefined) throw new PvError(ErrorCodes.INVALID_ARGUMENT, 'forget takes snapshots or --keep-last <n>, not both: run it twice');
      const ctx = openContext(globals());
      const t = await ctx.tenant();
      // Every reference is resolved before anything is removed: an unknown one forgets nothing.
      const chosen = new Map<string, Manifest>();
      // A damaged manifest, named by its whole id, can be forgotten too: it restores nothing anyway.
      const damaged: string[] = [];
      for (const ref of refs) {
        try {
          const m = await resolveSnapshot(t, ref, {}, leftOut);
          chosen.set(m.snapshotId, m);
        } catch (e) {
          // Named by id or prefix (not "latest"): the manifest the error names is the one to forget.
          const id = isPvError(e, ErrorCodes.OBJECT_CORRUPT) && /^[0-9a-f]{1,32}$/.test(ref) ? manifestIdOf(String(e.details['key'] ?? '')) : undefined;
          if (!id?.startsWith(ref)) throw e;
          damaged.push(id);
        }
      }
      if (o.keepLast !== undefined) for (const m of beyondKeepLast(await t.listManifests(), Number(o.keepLast))) chosen.set(m.snapshotId, m);
      const ms = [...chosen.values()];
      const ids = [...ms.map((m) => m.snapshotId), ...damaged];
      if (!o.dryRun) await forgetSnapshots(t, ids);
      if (ctx.json) return printJson({ dryRun: o.dryRun === true, forgotten: ids });
      printTable([...ms.map(summary), ...damaged.map((id) => ({ id, note: 'damaged manifest' }))]);
      process.stdout.write(`${o.dryRun ? 'would forget' : 'forgot'} ${ids.length} snapshot(s); \`pagevault prune\` reclaims their storage\n`);
    });

  program.command('prune').description('delete what no snapshot reaches and repack mostly dead packs; refused while a snapshot of the tenant is being ingested')
    .option('--dry-run', 'report what would be deleted and repacked, change nothing (takes no lock)')
    .option('--grace <duration>', 'never delete nor repack an object younger than this (90s, 30m, 1h, 2d; 0 for none)', '1h')
    .option('--repack-below <percent>', 'repack a partly dead pack when less than this share of its bytes is live (0 never repacks)', '50')
    .option('--wait <duration>', 'while the tenant is locked (snapshots being ingested, another prune), keep trying this long; new snapshots wait meanwhile', '0')
    .option('--consolidate-above <n>', 'with more index files than this older than the grace, merge them all into a few (what compactors load)', '32')
    .action(async (o: { dryRun?: boolean; grace: string; repackBelow: string; wait: string; consolidateAbove: string }) => {
      const graceMs = parseDuration(o.grace, '--grace');
      const waitMs = parseDuration(o.wait, '--wait');
      const pct = Number(o.repackBelow);
      if (!(pct >= 0 && pct <= 100)) throw new PvError(ErrorCodes.INVALID_ARGUMENT, `--repack-below ${JSON.stringify(o.repackBelow)} must be a percentage from 0 to 100`);
      const consolidateAbove = Number(o.consolidateAbove);
      if (!(Number.isInteger(consolidateAbove) && consolidateAbove >= 1)) {
        throw new PvError(ErrorCodes.INVALID_ARGUMENT, `--consolidate-above ${JSON.stringify(o.consolidateAbove)} must be an integer >= 1`);
      }
      const ctx = openContext(globals());
      let told = false;
      const onWait = async (holders: LockEntry[]) => {
        if (told) return;
        told = true;
        const held = await describeLocks(ctx.repo.store, holders);
        process.stderr.write(`pagevault: tenant ${ctx.tenantName} is locked, waiting up to ${o.wait}: ${held.join('; ')}\n`);
      };
      const r = await prune(ctx.repo.store, ctx.tenantName, { dryRun: o.dryRun === true, graceMs, repackBelow: pct / 100, consolidateAbove, lock: { ...ctx.repo.locks, waitMs, onWait } });
      if (ctx.json) printJson(r);
      else printTable(reportRows(r), ['what', 'count', 'detail']);
    });

  program.command('repair-index').description('rebuild damaged or missing index files from the packs (restic repair index); takes the tenant like prune')
    .option('--dry-run', 'report what is damaged and what would be indexed again, change nothing (takes no lock)')
    .option('--wait <duration>', 'while the tenant is locked, keep trying this long', '0')
    .action(async (o: { dryRun?: boolean; wait: string }) => {
      const waitMs = parseDuration(o.wait, '--wait');
      const ctx = openContext(globals());
      const r = await repairIndex(ctx.repo.store, ctx.tenantName, { dryRun: o.dryRun === true, lock: { ...ctx.repo.locks, waitMs } });
      // Damage that remains after the repair fails the command (exit 4), after the report.
      const remains = r.damagedPacks.length ? new PvError(ErrorCodes.OBJECT_CORRUPT, `${r.damagedPacks.length} damaged pack(s), ${r.pagesLost} page(s) in them not recoverable: ${r.damagedPacks.join(', ')}; \`pagevault verify\` names the snapshots that need them`, { details: { packs: r.damagedPacks } }) : undefined;
      if (ctx.json) {
        printJson(r);
        if (remains) throw remains;
        return;
      }
      const would = r.dryRun ? 'would be ' : '';
      printTable([
        { what: 'index files checked', count: r.indexFiles.checked, detail: r.indexFiles.damaged.length ? `damaged, ${would}replaced: ${r.indexFiles.damaged.join(', ')}` : 'none damaged' },
        { what: `packs ${would}indexed again`, count: r.packsReindexed, detail: `${r.pagesReindexed} pages; ${r.nodePacksReindexed} node pack(s)` },
        { what: 'damaged packs', count: r.damagedPacks.length, detail: r.damagedPacks.length ? `intact blobs ${would}indexed again, ${r.pagesLost} page(s) not: ${r.damagedPacks.join(', ')}` : '' },
        { what: 'stray files in index/', count: r.strayFiles.length, detail: r.strayFiles.length ? `not index files, ignored and kept: ${r.strayFiles.join(', ')}` : '' },
        { what: 'index files written', count: r.written.length, detail: r.written.join(', ') },
      ], ['what', 'count', 'detail']);
      if (remains) throw remains;
    });
}

function reportRows(r: PruneReport): Record<string, unknown>[] {
  const would = r.dryRun ? 'would be ' : '';
  const b = r.bytes;
  return [
    { what: 'snapshots kept', count: r.snapshots, detail: `${r.livePages} distinct live pages` },
    { what: `node packs ${would}deleted`, count: r.mapNodes.deleted, detail: `of ${r.mapNodes.stored}; ${r.mapNodes.spared} younger than the grace period` },
    { what: `node packs ${would}repacked`, count: r.mapNodes.repacked, detail: `${r.mapNodes.live} live map nodes; ${r.mapNodes.written} new node pack(s)` },
    { what: `packs ${would}deleted`, count: r.packs.deleted, detail: `of ${r.packs.stored}; ${r.packs.spared} younger than the grace period` },
    { what: `packs ${would}repacked`, count: r.packs.repacked, detail: `${r.pagesRepacked} live pages into ${r.packs.written} new pack(s)` },
    { what: `index files ${would}deleted`, count: r.indexFiles.deleted, detail: `${r.indexFiles.written} written in their place` },
    { what: `tags ${would}deleted`, count: r.tagsDeleted, detail: 'markers of snapshots that no longer exist' },
    { what: 'stale locks deleted', count: r.staleLocksDeleted, detail: 'left by holders that died or stopped rewriting them' },
    { what: 'unfinished puts deleted', count: r.unfinishedPuts.deleted, detail: `${bytes(r.unfinishedPuts.bytes)} of temp files left by writers that died` },
    { what: 'bytes', count: bytes(b.before - b.after), detail: `${r.dryRun ? 'would free' : 'freed'}: ${bytes(b.before)} before, ${bytes(b.after)} after${r.dryRun ? ' (estimated)' : ''}` },
  ];
}

/** The snapshot id of a manifest's key (t/<tenant>/snapshots/<id>.json), or undefined. */
function manifestIdOf(key: string): string | undefined {
  return /\/snapshots\/([0-9a-f]{32})\.json$/.exec(key)?.[1];
}
