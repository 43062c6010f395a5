import { basename } from 'node:path';
import type { VmaHeader } from '@pagevault/format';
import { readU64, writeU64 } from './u64';

/** Reads `len` bytes at a virtual address from what the core holds, or undefined if it holds none there. */
export type CoreRead = (vaddr: number, len: number) => Promise<Buffer | undefined>;

const AT = { NULL: 0, PHDR: 3, PHENT: 4, PHNUM: 5, PAGESZ: 6, BASE: 7, ENTRY: 9 } as const;
const PT_LOAD = 1;
const PT_INTERP = 3;
const PT_PHDR = 6;

interface MappedElf {
  vma: VmaHeader;
  entry: number;
  phnum: number;
  /** Load bias plus PT_PHDR's address: where the program headers are in memory. */
  phdrAddr: number;
  bias: number;
  interp: string | undefined;
}

/**
 * A minimal NT_AUXV (AT_PHDR, AT_PHNUM, AT_ENTRY, AT_BASE, AT_PAGESZ) rebuilt from the ELF headers the
 * core holds: the stream carries no auxiliary vector, and without AT_ENTRY gdb cannot relocate a PIE
 * executable (no symbols), and without AT_BASE it cannot find the shared libraries. The executable is the
 * mapped ELF with a PT_INTERP whose name matches argv[0], else the lowest one with a PT_INTERP. Returns
 * undefined when no such header is in the core (e.g. its first page is a hole).
 */
export async function rebuildAuxv(fileVmas: VmaHeader[], argv0: string, pageSize: number, read: CoreRead): Promise<Buffer | undefined> {
  const elves: MappedElf[] = [];
  for (const v of fileVmas.filter((x) => x.pgoff === 0)) {
    const e = parseHeaders(v, await read(v.start, Math.min(pageSize, v.end - v.start)));
    if (e) elves.push(e);
  }
  const programs = elves.filter((e) => e.interp !== undefined);
  const exe = programs.find((e) => basename(e.vma.path) === basename(argv0)) ?? programs[0];
  if (!exe) return undefined;
  const interp = elves.find((e) => e !== exe && basename(e.vma.path) === basename(exe.interp!));
  const pairs: [number, number][] = [
    [AT.PHDR, exe.phdrAddr], [AT.PHENT, 56], [AT.PHNUM, exe.phnum], [AT.PAGESZ, pageSize],
    [AT.BASE, interp ? interp.vma.start : 0], [AT.ENTRY, exe.bias + exe.entry], [AT.NULL, 0],
  ];
  const b = Buffer.alloc(pairs.length * 16);
  pairs.forEach(([k, val], i) => {
    writeU64(b, k, i * 16);
    writeU64(b, val, i * 16 + 8);
  });
  return b;
}

/** The ELF header and program headers in the first page of a mapping, if that is what it holds. */
function parseHeaders(vma: VmaHeader, page: Buffer | undefined): MappedElf | undefined {
  if (!page || page.length < 64 || page.readUInt32BE(0) !== 0x7f454c46 || page[4] !== 2 || page[5] !== 1) return undefined;
  const type = page.readUInt16LE(16);
  if (type !== 2 && type !== 3) return undefined; // ET_EXEC, ET_DYN
  const phoff = readU64(page, 32);
  const phnum = page.readUInt16LE(56);
  if (page.readUInt16LE(54) !== 56 || phoff + phnum * 56 > page.length) return undefined;
  let firstLoad: number | undefined;
  let phdrVaddr: number | undefined;
  let interp: string | undefined;
  for (let i = 0; i < phnum; i++) {
    const o = phoff + i * 56;
    const pType = page.readUInt32LE(o);
    const pOffset = readU64(page, o + 8);
    const pVaddr = readU64(page, o + 16);
    const pFilesz = readU64(page, o + 32);
    if (pType === PT_LOAD && firstLoad === undefined) firstLoad = pVaddr;
    if (pType === PT_PHDR) phdrVaddr = pVaddr;
    if (pType === PT_INTERP && pOffset + pFilesz <= page.length) interp = page.toString('latin1', pOffset, pOffset + pFilesz).replace(/\0.*$/s, '');
  }
  if (firstLoad === undefined) return undefined;
  const bias = vma.start - (firstLoad - (firstLoad % 4096));
  return { vma, entry: readU64(page, 24), phnum, phdrAddr: bias + (phdrVaddr ?? firstLoad + phoff), bias, interp };
}
