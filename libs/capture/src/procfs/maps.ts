/** One line of /proc/PID/maps, plus the VmFlags line that /proc/PID/smaps adds under it. */
export interface MapsEntry {
  start: number;
  end: number;
  /** "rwxp" / "r--s": read, write, exec, then p(rivate) or s(hared). */
  perms: string;
  /** Offset into the mapped object, in bytes. */
  offset: number;
  /** "major:minor" in hex, as the kernel prints it. */
  dev: string;
  inode: number;
  /** File name, "[heap]", "[stack]", "[vdso]"..., "" for anonymous memory. May end in " (deleted)". */
  path: string;
  /** smaps VmFlags ("rd wr mr mw me ac"), '' when read from maps. */
  vmFlags: string;
}

// Addresses, offset and inode are printed unpadded-to-width hex/decimal; the path is everything after the
// inode's padding and may itself contain spaces.
const LINE =
  /^([0-9a-f]+)-([0-9a-f]+) ([-r][-w][-x][ps]) ([0-9a-f]+) ([0-9a-f]+:[0-9a-f]+) (\d+)(?: +(.*))?$/;

/** Parses one maps line, or returns undefined when it is not one (e.g. an smaps field line). */
export function parseMapsLine(line: string): MapsEntry | undefined {
  const m = LINE.exec(line);
  if (!m) return undefined;
  // Page-aligned addresses below 2^64 are exact as doubles (the spacing there is 2 KiB), so Number is safe.
  return {
    start: parseInt(m[1], 16),
    end: parseInt(m[2], 16),
    perms: m[3],
    offset: parseInt(m[4], 16),
    dev: m[5],
    inode: Number(m[6]),
    path: m[7] ?? '',
    vmFlags: '',
  };
}

/** Parses the text of /proc/PID/maps. */
export function parseMaps(text: string): MapsEntry[] {
  const out: MapsEntry[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const e = parseMapsLine(line);
    if (!e) throw new SyntaxError(`not a maps line: ${JSON.stringify(line)}`);
    out.push(e);
  }
  return out;
}

/**
 * Parses the text of /proc/PID/smaps: the maps line of each VMA followed by its fields, of which only
 * VmFlags is kept (the rest are counters that pagemap gives us page by page).
 */
export function parseSmaps(text: string): MapsEntry[] {
  const out: MapsEntry[] = [];
  let current: MapsEntry | undefined;
  // About 25 field lines per VMA: they are recognised where they lie in the text, without a string
  // each (a process with 20,000 VMAs has half a million of them, read while it is frozen).
  for (let pos = 0, nl = 0; pos < text.length; pos = nl + 1) {
    nl = text.indexOf('\n', pos);
    if (nl < 0) nl = text.length;
    if (nl === pos) continue;
    if (text.startsWith('VmFlags:', pos)) {
      if (!current) throw new SyntaxError('VmFlags before any VMA in smaps');
      current.vmFlags = text.slice(pos + 'VmFlags:'.length, nl).trim().split(/\s+/).join(' ');
      continue;
    }
    // Field lines start with a capitalised name and a colon; VMA lines with a hex address and '-'.
    FIELD.lastIndex = pos;
    if (FIELD.test(text)) continue;
    const line = text.slice(pos, nl);
    const e = parseMapsLine(line);
    if (!e) throw new SyntaxError(`not an smaps line: ${JSON.stringify(line)}`);
    out.push(e);
    current = e;
  }
  return out;
}

const FIELD = /[A-Z][A-Za-z_]*:/y;
