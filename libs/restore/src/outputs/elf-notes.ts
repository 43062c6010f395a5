import { basename } from 'node:path';
import { Consistency, type SnapshotBegin, type VmaHeader } from '@pagevault/format';
import { splitCmdline } from './raw-layout';
import { writeU64 } from './u64';

/** Note types of a Linux core (include/uapi/linux/elf.h). */
export const NT = { PRSTATUS: 1, PRPSINFO: 3, AUXV: 6, FILE: 0x46494c45 } as const;

/** x86_64 sizes of struct elf_prstatus and struct elf_prpsinfo (linux/elfcore.h). */
const PRSTATUS_BYTES = 336;
const PRPSINFO_BYTES = 136;
const PR_PID = 32;

/** One ELF note: namesz, descsz, type, then name and desc each padded to 4 bytes. */
export function encodeNote(name: string, type: number, desc: Buffer): Buffer {
  const n = Buffer.from(name + '\0', 'latin1');
  const pad = (x: number) => (x + 3) & ~3;
  const b = Buffer.alloc(12 + pad(n.length) + pad(desc.length));
  b.writeUInt32LE(n.length, 0);
  b.writeUInt32LE(desc.length, 4);
  b.writeUInt32LE(type, 8);
  n.copy(b, 12);
  desc.copy(b, 12 + pad(n.length));
  return b;
}

/** NT_PRPSINFO: the process's pid, short name and arguments, from snapshot-begin. */
export function prpsinfo(b: SnapshotBegin): Buffer {
  const d = Buffer.alloc(PRPSINFO_BYTES);
  const argv = splitCmdline(b.cmdline);
  d.write(b.consistency === Consistency.Live ? 'R' : 'T', 1, 'latin1'); // pr_sname: frozen snapshots are of a stopped process
  d.writeInt32LE(b.pid, 24); // pr_pid
  copyCString(d, 40, 16, basename(argv[0] ?? ''));
  copyCString(d, 56, 80, argv.join(' '));
  return d;
}

/**
 * NT_PRSTATUS for one thread. pagevault captures memory, not registers: the register set is zero and so
 * is the signal. gdb needs a prstatus to have a thread (it shows pc 0 for it); every memory command works.
 */
export function prstatus(pid: number): Buffer {
  const d = Buffer.alloc(PRSTATUS_BYTES);
  d.writeInt32LE(pid, PR_PID);
  return d;
}

/**
 * NT_FILE: count, page size, then (start, end, offset in pages) per file mapping, then the file names,
 * NUL-terminated, in the same order. gdb uses it to name mappings ("info proc mappings") and find shared
 * libraries.
 */
export function ntFile(vmas: VmaHeader[], pageSize: number): Buffer {
  const names = vmas.map((v) => Buffer.from(v.path + '\0', 'utf8'));
  const d = Buffer.alloc(16 + vmas.length * 24 + names.reduce((n, s) => n + s.length, 0));
  writeU64(d, vmas.length, 0);
  writeU64(d, pageSize, 8);
  vmas.forEach((v, i) => {
    writeU64(d, v.start, 16 + i * 24);
    writeU64(d, v.end, 24 + i * 24);
    writeU64(d, Math.floor(v.pgoff / pageSize), 32 + i * 24);
  });
  let o = 16 + vmas.length * 24;
  for (const s of names) o += s.copy(d, o);
  return d;
}

/**
 * The PT_NOTE segment in the kernel's order: PRSTATUS first (gdb takes the first as the current thread),
 * PRPSINFO, AUXV when one could be rebuilt (see elf-auxv.ts), FILE.
 */
export function coreNotes(b: SnapshotBegin, fileVmas: VmaHeader[], auxv?: Buffer): Buffer {
  return Buffer.concat([
    encodeNote('CORE', NT.PRSTATUS, prstatus(b.pid)),
    encodeNote('CORE', NT.PRPSINFO, prpsinfo(b)),
    ...(auxv ? [encodeNote('CORE', NT.AUXV, auxv)] : []),
    encodeNote('CORE', NT.FILE, ntFile(fileVmas, b.pageSize)),
  ]);
}

/** Writes s into d[at, at + size) truncated to size - 1 bytes, NUL-terminated (d is zeroed). */
function copyCString(d: Buffer, at: number, size: number, s: string): void {
  const bytes = Buffer.from(s, 'utf8');
  bytes.copy(d, at, 0, Math.min(bytes.length, size - 1));
}
