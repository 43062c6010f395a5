import { closeSync, openSync, readSync } from 'node:fs';
import { ELF, type ElfCoreInfo, type ProgramHeader } from '@pagevault/restore';

export interface CoreRange {
  start: string;
  end: string;
  pages: number;
  /** The file that maps the range (from our NT_FILE), or its bracketed name from /proc maps when known. */
  name: string;
}

export interface CoreComparison {
  /** Pages both cores hold in the file (p_filesz), compared byte for byte. */
  bothPages: number;
  mismatches: string[];
  /** Ranges with contents in our core only, and in the other core only. */
  onlyOurs: CoreRange[];
  onlyTheirs: CoreRange[];
}

type Seg = Pick<ProgramHeader, 'vaddr' | 'offset' | 'filesz'>;

/**
 * Compares two cores over the address ranges both hold with contents (PT_LOAD, p_filesz > 0): every such
 * page must be equal. Ranges only one core holds are listed, named with `names` (address -> name).
 */
export function compareCores(oursPath: string, ours: ElfCoreInfo, theirsPath: string, theirs: ElfCoreInfo, ps: number, names = new Map<number, string>()): CoreComparison {
  const held = (c: ElfCoreInfo): Seg[] => c.phdrs.filter((p) => p.type === ELF.PT_LOAD && p.filesz > 0);
  const a = held(ours);
  const b = held(theirs);
  const fa = openSync(oursPath, 'r');
  const fb = openSync(theirsPath, 'r');
  const out: CoreComparison = { bothPages: 0, mismatches: [], onlyOurs: [], onlyTheirs: [] };
  try {
    for (const x of a) {
      for (const y of b) {
        const lo = Math.max(x.vaddr, y.vaddr);
        const hi = Math.min(x.vaddr + x.filesz, y.vaddr + y.filesz);
        if (lo >= hi) continue;
        const ba = read(fa, x.offset + (lo - x.vaddr), hi - lo);
        const bb = read(fb, y.offset + (lo - y.vaddr), hi - lo);
        for (let o = 0; o < hi - lo; o += ps) {
          if (ba.compare(bb, o, o + ps, o, o + ps) !== 0) out.mismatches.push(`0x${(lo + o).toString(16)}`);
        }
        out.bothPages += (hi - lo) / ps;
      }
    }
  } finally {
    closeSync(fa);
    closeSync(fb);
  }
  out.onlyOurs = minus(a, b, ps, names);
  out.onlyTheirs = minus(b, a, ps, names);
  return out;
}

function read(fd: number, at: number, len: number): Buffer {
  const buf = Buffer.alloc(len);
  readSync(fd, buf, 0, len, at);
  return buf;
}

/** The parts of segments `x` that no segment of `y` holds, in pages. */
function minus(x: Seg[], y: Seg[], ps: number, names: Map<number, string>): CoreRange[] {
  const out: CoreRange[] = [];
  for (const s of x) {
    let runStart = -1;
    for (let a = s.vaddr; a <= s.vaddr + s.filesz; a += ps) {
      const covered = a < s.vaddr + s.filesz && y.some((t) => a >= t.vaddr && a < t.vaddr + t.filesz);
      const inRange = a < s.vaddr + s.filesz;
      if (inRange && !covered && runStart < 0) runStart = a;
      if ((!inRange || covered) && runStart >= 0) {
        out.push({ start: `0x${runStart.toString(16)}`, end: `0x${a.toString(16)}`, pages: (a - runStart) / ps, name: names.get(s.vaddr) ?? '' });
        runStart = -1;
      }
    }
  }
  return out;
}
