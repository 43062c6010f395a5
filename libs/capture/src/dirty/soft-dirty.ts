import { closeSync, existsSync, openSync, readFileSync, readSync, writeFileSync } from 'node:fs';
import { release } from 'node:os';
import { gunzipSync } from 'node:zlib';
import { libc } from '../memory/libc';
import { HI_PRESENT, HI_SOFT_DIRTY } from '../pagemap/pagemap-bits';
import { procError } from '../procfs/proc-files';

export interface SoftDirtySupport {
  supported: boolean;
  /** How it was decided, for logs. */
  evidence: string;
}

let cached: SoftDirtySupport | undefined;

/** Whether this kernel tracks soft-dirty PTEs (CONFIG_MEM_SOFT_DIRTY). Cached after the first call. */
export function detectSoftDirty(): boolean {
  return detectSoftDirtyDetailed().supported;
}

/**
 * Decides from the kernel config when it is readable, confirmed by an experiment that changes nothing:
 * a page the agent has just written must read back soft-dirty in /proc/self/pagemap (bit 55), since a
 * page written after the last clear_refs (or ever, if never cleared) is soft-dirty. Writing clear_refs of
 * the agent itself, or of a target, to find out would disturb them, so it is never done here.
 */
export function detectSoftDirtyDetailed(): SoftDirtySupport {
  if (cached) return cached;
  const config = kernelConfig();
  const probe = selfProbe();
  if (config === 'n')
    cached = { supported: false, evidence: 'CONFIG_MEM_SOFT_DIRTY is not set in the kernel config' };
  else if (probe === undefined)
    cached = {
      supported: config === 'y',
      evidence: `kernel config says ${config ?? 'nothing'}; probe inconclusive`,
    };
  else
    cached = {
      supported: probe,
      evidence: `a freshly written page of the agent reads soft-dirty=${probe} in pagemap`,
    };
  return cached;
}

function kernelConfig(): 'y' | 'n' | undefined {
  let text: string | undefined;
  try {
    if (existsSync('/proc/config.gz')) text = gunzipSync(readFileSync('/proc/config.gz')).toString('latin1');
    else if (existsSync(`/boot/config-${release()}`))
      text = readFileSync(`/boot/config-${release()}`, 'latin1');
  } catch {
    return undefined;
  }
  if (text === undefined) return undefined;
  return /^CONFIG_MEM_SOFT_DIRTY=y$/m.test(text) ? 'y' : 'n';
}

function selfProbe(): boolean | undefined {
  const c = libc();
  if (!c) return undefined;
  const ps = c.pageSize;
  const buf = Buffer.allocUnsafeSlow(2 * ps);
  buf.fill(0xa5);
  const addr = Math.ceil(c.addressOf(buf) / ps) * ps;
  const entry = Buffer.alloc(8);
  let fd = -1;
  try {
    fd = openSync('/proc/self/pagemap', 'r');
    if (readSync(fd, entry, 0, 8, (addr / ps) * 8) !== 8) return undefined;
  } catch {
    return undefined;
  } finally {
    if (fd >= 0) closeSync(fd);
  }
  const hi = entry.readUInt32LE(4);
  if (!(hi & HI_PRESENT)) return undefined;
  return (hi & HI_SOFT_DIRTY) !== 0;
}

/** Clears the soft-dirty bits of every page of a process (clear_refs 4); later writes set them again. */
export function clearSoftDirty(pid: number): void {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '4');
  } catch (e) {
    throw procError(e, pid, `/proc/${pid}/clear_refs`, true);
  }
}

/** For tests: forget the cached detection. */
export function resetSoftDirtyCache(): void {
  cached = undefined;
}
