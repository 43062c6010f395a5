import { open } from 'node:fs/promises';
import { ErrorCodes, PvError } from '@pagevault/errors';
import { ELF, type ProgramHeader } from './elf-layout';
import { readU64 } from './u64';

export interface ElfNote {
  name: string;
  type: number;
  desc: Buffer;
}

export interface ElfCoreInfo {
  type: number;
  machine: number;
  phoff: number;
  phdrs: ProgramHeader[];
  notes: ElfNote[];
}

/**
 * Reads the ELF header, program headers and notes of a 64-bit little-endian core file (ours, the kernel's
 * or gcore's). For checking cores, not for loading programs: segment bodies are read with readSegment.
 */
export async function readElfCore(path: string): Promise<ElfCoreInfo> {
  const fh = await open(path, 'r');
  try {
    const read = async (at: number, len: number): Promise<Buffer> => {
      const b = Buffer.alloc(len);
      const { bytesRead } = await fh.read(b, 0, len, at);
      if (bytesRead !== len) bad(path, `short read at ${at}`);
      return b;
    };
    const h = await read(0, ELF.EHDR_BYTES);
    if (h.readUInt32BE(0) !== 0x7f454c46 || h[4] !== 2 || h[5] !== 1) bad(path, 'not a 64-bit little-endian ELF file');
    const phoff = readU64(h, 32);
    let phnum = h.readUInt16LE(56);
    if (phnum === ELF.PN_XNUM) phnum = (await read(readU64(h, 40), ELF.SHDR_BYTES)).readUInt32LE(44);
    const table = await read(phoff, phnum * ELF.PHDR_BYTES);
    const phdrs: ProgramHeader[] = [];
    for (let i = 0; i < phnum; i++) {
      const o = i * ELF.PHDR_BYTES;
      const u64 = (at: number) => readU64(table, o + at);
      phdrs.push({ type: table.readUInt32LE(o), flags: table.readUInt32LE(o + 4), offset: u64(8), vaddr: u64(16), filesz: u64(32), memsz: u64(40), align: u64(48) });
    }
    const notes: ElfNote[] = [];
    for (const p of phdrs.filter((x) => x.type === ELF.PT_NOTE)) notes.push(...parseNotes(await read(p.offset, p.filesz)));
    return { type: h.readUInt16LE(16), machine: h.readUInt16LE(18), phoff, phdrs, notes };
  } finally {
    await fh.close();
  }
}

export function parseNotes(b: Buffer): ElfNote[] {
  const notes: ElfNote[] = [];
  const pad = (x: number) => (x + 3) & ~3;
  for (let o = 0; o + 12 <= b.length; ) {
    const namesz = b.readUInt32LE(o);
    const descsz = b.readUInt32LE(o + 4);
    const type = b.readUInt32LE(o + 8);
    const name = b.toString('latin1', o + 12, o + 12 + namesz).replace(/\0+$/, '');
    const at = o + 12 + pad(namesz);
    notes.push({ name, type, desc: b.subarray(at, at + descsz) });
    o = at + pad(descsz);
  }
  return notes;
}

/** The bytes of [vaddr, vaddr + len) from a PT_LOAD that holds them in the file, or undefined. */
export async function readSegment(path: string, phdrs: ProgramHeader[], vaddr: number, len: number): Promise<Buffer | undefined> {
  const p = phdrs.find((x) => x.type === ELF.PT_LOAD && x.vaddr <= vaddr && vaddr + len <= x.vaddr + x.filesz);
  if (!p) return undefined;
  const fh = await open(path, 'r');
  try {
    const b = Buffer.alloc(len);
    await fh.read(b, 0, len, p.offset + (vaddr - p.vaddr));
    return b;
  } finally {
    await fh.close();
  }
}

function bad(path: string, why: string): never {
  throw new PvError(ErrorCodes.INVALID_ARGUMENT, `${path}: ${why}`, { details: { path } });
}
