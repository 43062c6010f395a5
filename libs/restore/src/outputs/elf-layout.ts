import { Prot } from '@pagevault/format';
import { writeU64 } from './u64';

/** ELF64 constants and encoders for an x86_64 core file (see elf(5), gabi "ELF-64 Object File Format"). */
export const ELF = {
  EHDR_BYTES: 64,
  PHDR_BYTES: 56,
  SHDR_BYTES: 64,
  ET_CORE: 4,
  EM_X86_64: 62,
  PT_LOAD: 1,
  PT_NOTE: 4,
  PF_X: 1,
  PF_W: 2,
  PF_R: 4,
  /** e_phnum value meaning "the real count is in section header 0's sh_info". */
  PN_XNUM: 0xffff,
} as const;

export interface ProgramHeader {
  type: number;
  flags: number;
  offset: number;
  vaddr: number;
  filesz: number;
  memsz: number;
  align: number;
}

/** PF_* flags for PROT_* bits (the two use different bit orders). */
export function segmentFlags(prot: number): number {
  return (prot & Prot.Read ? ELF.PF_R : 0) | (prot & Prot.Write ? ELF.PF_W : 0) | (prot & Prot.Exec ? ELF.PF_X : 0);
}

/**
 * The ELF header. With more than PN_XNUM - 1 program headers, e_phnum is PN_XNUM and the count goes into
 * the one section header at `shoff`, as the kernel's core dumper does (fill_extnum_info).
 */
export function encodeElfHeader(phoff: number, phnum: number, shoff: number): Buffer {
  const b = Buffer.alloc(ELF.EHDR_BYTES);
  b.set([0x7f, 0x45, 0x4c, 0x46, 2 /* ELFCLASS64 */, 1 /* ELFDATA2LSB */, 1 /* EV_CURRENT */, 0 /* ELFOSABI_NONE */]);
  const ext = phnum >= ELF.PN_XNUM;
  b.writeUInt16LE(ELF.ET_CORE, 16);
  b.writeUInt16LE(ELF.EM_X86_64, 18);
  b.writeUInt32LE(1, 20); // e_version
  writeU64(b, 0, 24); // e_entry
  writeU64(b, phoff, 32);
  writeU64(b, ext ? shoff : 0, 40);
  b.writeUInt32LE(0, 48); // e_flags
  b.writeUInt16LE(ELF.EHDR_BYTES, 52);
  b.writeUInt16LE(ELF.PHDR_BYTES, 54);
  b.writeUInt16LE(ext ? ELF.PN_XNUM : phnum, 56);
  b.writeUInt16LE(ext ? ELF.SHDR_BYTES : 0, 58);
  b.writeUInt16LE(ext ? 1 : 0, 60); // e_shnum
  b.writeUInt16LE(0, 62); // e_shstrndx = SHN_UNDEF
  return b;
}

/** Section header 0 of an extended-numbering core: SHT_NULL carrying the real e_phnum in sh_info. */
export function encodeExtnumSection(phnum: number): Buffer {
  const b = Buffer.alloc(ELF.SHDR_BYTES);
  writeU64(b, 1, 32); // sh_size = real e_shnum
  b.writeUInt32LE(phnum, 44); // sh_info
  return b;
}

export function encodeProgramHeaders(phdrs: ProgramHeader[]): Buffer {
  const b = Buffer.alloc(phdrs.length * ELF.PHDR_BYTES);
  phdrs.forEach((p, i) => {
    const o = i * ELF.PHDR_BYTES;
    b.writeUInt32LE(p.type, o);
    b.writeUInt32LE(p.flags, o + 4);
    writeU64(b, p.offset, o + 8);
    writeU64(b, p.vaddr, o + 16);
    writeU64(b, 0, o + 24); // p_paddr
    writeU64(b, p.filesz, o + 32);
    writeU64(b, p.memsz, o + 40);
    writeU64(b, p.align, o + 48);
  });
  return b;
}

export function alignUp(n: number, to: number): number {
  return Math.ceil(n / to) * to;
}
