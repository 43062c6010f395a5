import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { thawAllFrozen } from '@pagevault/capture';
import { ErrorCodes, PvError } from '@pagevault/errors';
import { identityScope } from '@pagevault/repo';
import { atomicDir, atomicFile } from './atomic-output';

/** A writer tag of this scope whose process has exited (a pid just freed). */
function deadWriter(): string {
  return `${identityScope()}-${spawnSync('true').pid}-1-deadbeef`;
}

const work = mkdtempSync(join(tmpdir(), 'pv-atomic-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const write = (text: string) => (tmp: string) => writeFile(tmp, text);

describe('atomicFile', () => {
  it('never replaces a device, a FIFO or a directory, even when asked to', async () => {
    await expect(atomicFile('/dev/null', false, write('x'), true)).rejects.toMatchObject({ code: ErrorCodes.INVALID_ARGUMENT, message: expect.stringContaining('character device') });
    expect(lstatSync('/dev/null').isCharacterDevice()).toBe(true);
    const fifo = join(work, 'fifo');
    execFileSync('mkfifo', [fifo]);
    await expect(atomicFile(fifo, false, write('x'), true)).rejects.toMatchObject({ code: ErrorCodes.INVALID_ARGUMENT, message: expect.stringContaining('FIFO') });
    expect(lstatSync(fifo).isFIFO()).toBe(true);
    const dir = join(work, 'd');
    mkdirSync(dir);
    await expect(atomicFile(dir, false, write('x'), true)).rejects.toMatchObject({ code: ErrorCodes.INVALID_ARGUMENT });
    expect(lstatSync(dir).isDirectory()).toBe(true);
  });

  it('leaves a user file named like its temporary file alone, and two writers to one path do not collide', async () => {
    const out = join(work, 'shared.out');
    writeFileSync(`${out}.partial`, 'mine');
    await Promise.all([atomicFile(out, false, write('a'), true), atomicFile(out, false, write('b'), true)]);
    expect(['a', 'b']).toContain(readFileSync(out, 'utf8'));
    expect(readFileSync(`${out}.partial`, 'utf8')).toBe('mine');
    expect(readdirSync(work).filter((n) => n.startsWith('shared.out.partial-'))).toEqual([]);
  });

  it('removes its temporary file when the process is being killed (the signal handlers run thawAllFrozen)', async () => {
    const out = join(work, 'killed.out');
    let tmpSeen = '';
    await atomicFile(out, false, async (tmp) => {
      await writeFile(tmp, 'half');
      tmpSeen = tmp;
      thawAllFrozen(); // what SIGINT/SIGTERM run before the process dies
      expect(existsSync(tmp)).toBe(false);
      await writeFile(tmp, 'whole'); // (the process would be gone; here the write goes on)
    });
    expect(tmpSeen).toMatch(new RegExp(`killed\\.out\\.partial-${identityScope()}-${process.pid}-\\d+-[0-9a-f]{8}$`));
  });

  it("removes the partial file of a writer killed with SIGKILL, not a live writer's", async () => {
    const out = join(work, 'left.out');
    const dead = `left.out.partial-${deadWriter()}`;
    const live = `left.out.partial-${identityScope()}-1-${readFileSync('/proc/1/stat', 'utf8').replace(/^.*\) /s, '').split(' ')[19]}-0123abcd`;
    writeFileSync(join(work, dead), 'half');
    writeFileSync(join(work, live), 'writing');
    await atomicFile(out, false, write('whole'));
    expect(readFileSync(out, 'utf8')).toBe('whole');
    expect(readdirSync(work).filter((n) => n.startsWith('left.out'))).toEqual(['left.out', live].sort());
  });

  it('refuses before writing an output on /proc or /sys, and a name too long for its temporary sibling', async () => {
    for (const out of ['/proc/sysrq-trigger', '/proc/self/mem', '/sys/kernel/new-file']) {
      await expect(atomicFile(out, false, write('x'), true)).rejects.toMatchObject({ code: ErrorCodes.INVALID_ARGUMENT, message: expect.stringMatching(/is on (proc|sysfs), a kernel interface file system/) });
    }
    const long = join(work, 'n'.repeat(240));
    await expect(atomicFile(long, false, write('x'))).rejects.toMatchObject({ code: ErrorCodes.INVALID_ARGUMENT, message: expect.stringContaining('its name is too long') });
    expect(readdirSync(work).filter((n) => n.startsWith('nnnn'))).toEqual([]);
    await atomicFile(join(work, 'n'.repeat(200)), false, write('x')); // room enough
  });

  it('says a missing directory or a file used as one is a bad path, not a store outage', async () => {
    await expect(atomicFile(join(work, 'nope', 'x'), false, write('x'))).rejects.toMatchObject({ code: ErrorCodes.INVALID_ARGUMENT, message: expect.stringContaining('does not exist') });
    writeFileSync(join(work, 'plain'), '');
    await expect(atomicFile(join(work, 'plain', 'x'), false, write('x'))).rejects.toMatchObject({ code: ErrorCodes.INVALID_ARGUMENT, message: expect.stringContaining('not a directory') });
  });
});

describe('atomicDir', () => {
  it('never replaces a file or a device with a directory', async () => {
    const file = join(work, 'not-a-dir');
    writeFileSync(file, 'keep');
    await expect(atomicDir(file, false, async () => undefined, true)).rejects.toMatchObject({ code: ErrorCodes.INVALID_ARGUMENT, message: expect.stringContaining('not a directory') });
    expect(readFileSync(file, 'utf8')).toBe('keep');
    await expect(atomicDir('/dev/null', false, async () => undefined, true)).rejects.toMatchObject({ code: ErrorCodes.INVALID_ARGUMENT });
  });

  it('says a directory another writer finished first exists (a bad path), not a store outage, and keeps it', async () => {
    const dir = join(work, 'raced');
    const lost = atomicDir(dir, false, async (tmp) => {
      writeFileSync(join(tmp, 'mine'), 'mine');
      mkdirSync(dir); // the other restore's rename lands first
      writeFileSync(join(dir, 'theirs'), 'theirs');
    });
    await expect(lost).rejects.toMatchObject({ code: ErrorCodes.INVALID_ARGUMENT, message: expect.stringContaining('it exists already') });
    expect(readdirSync(dir)).toEqual(['theirs']);
    expect(readdirSync(work).filter((f) => f.startsWith('.raced.'))).toEqual([]);
  });

  it('names the output, not its temporary file, in an error met writing it (a full disk)', async () => {
    const out = join(work, 'full.out');
    const full = (tmp: string) => new PvError(ErrorCodes.STORE_FULL, `output ${tmp}: write failed: no space left (ENOSPC)`, { details: { path: tmp } });
    await expect(atomicFile(out, false, async (tmp) => Promise.reject(full(tmp)))).rejects.toMatchObject({
      code: ErrorCodes.STORE_FULL, message: `output ${out}: write failed: no space left (ENOSPC)`, details: { path: out },
    });
    const dir = join(work, 'full-dir');
    await expect(atomicDir(dir, false, async (tmp) => Promise.reject(full(join(tmp, 'img'))))).rejects.toMatchObject({
      message: `output ${join(dir, 'img')}: write failed: no space left (ENOSPC)`,
    });
  });

  it('creates the output directory but not its missing parents, as atomicFile does', async () => {
    let wrote = false;
    await expect(atomicDir(join(work, 'no-parent', 'raw'), false, async () => void (wrote = true))).rejects.toMatchObject({
      code: ErrorCodes.INVALID_ARGUMENT, message: expect.stringContaining('does not exist'),
    });
    expect(wrote).toBe(false);
    expect(existsSync(join(work, 'no-parent'))).toBe(false);
  });

  it('removes its temporary directory when the process is being killed', async () => {
    const out = join(work, 'rawdir');
    await atomicDir(out, false, async (tmp) => {
      writeFileSync(join(tmp, 'img'), 'x');
      thawAllFrozen();
      expect(existsSync(tmp)).toBe(false);
      mkdirSync(tmp);
    });
    expect(readdirSync(work).filter((n) => n.startsWith('.rawdir.partial'))).toEqual([]);
  });

  it("puts back the earlier output a killed writer had moved aside, and removes its partial one", async () => {
    const out = join(work, 'raw-killed');
    const writer = deadWriter(); // one writer, killed between its two renames: both siblings are its own
    const replaced = join(work, `.raw-killed.replaced-${writer}`);
    const partial = join(work, `.raw-killed.partial-${writer.replace(/deadbeef$/, 'feedbeef')}`);
    const elsewhere = join(work, `.raw-killed.partial-0badc0de-1-1-deadbeef`); // another boot or pid namespace: not judged
    for (const d of [replaced, partial, elsewhere]) mkdirSync(d);
    writeFileSync(join(replaced, 'layout.json'), 'earlier');
    await expect(atomicDir(out, false, async () => undefined)).rejects.toMatchObject({ code: ErrorCodes.INVALID_ARGUMENT, message: expect.stringContaining('exists') });
    expect(readFileSync(join(out, 'layout.json'), 'utf8')).toBe('earlier');
    expect(existsSync(replaced) || existsSync(partial)).toBe(false);
    expect(existsSync(elsewhere)).toBe(true);

    // A writer that died after its second rename left only the moved-aside output: the output it wrote
    // replaced that one, and if the output is missing now, its user removed it. Not brought back.
    const done = join(work, 'raw-done');
    const aside = join(work, `.raw-done.replaced-${deadWriter()}`);
    mkdirSync(aside);
    writeFileSync(join(aside, 'layout.json'), 'older');
    await atomicDir(done, false, async (tmp) => writeFileSync(join(tmp, 'layout.json'), 'new'));
    expect(readFileSync(join(done, 'layout.json'), 'utf8')).toBe('new');
    expect(existsSync(aside)).toBe(false);
  });
});

