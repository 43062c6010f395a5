import { closeSync, existsSync, fstatSync, openSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorCodes, PvError } from '@pagevault/errors';
import { ERRNO, errnoName, libc } from '../memory/libc';
import type { Thawable } from './thaw-registry';

const LOCK_EX = 2;
const LOCK_NB = 4;
const LOCK_UN = 8;

/** Held freeze locks of some pids; thaw() releases them: synchronous, idempotent, never throws (a Thawable). */
export type FreezeLock = Thawable;

/**
 * Where freeze locks live: PV_LOCK_DIR, else /run/lock (every pagevault process of the host must agree,
 * whatever its TMPDIR), else the temp dir.
 */
export function freezeLockDir(): string {
  const dir = process.env['PV_LOCK_DIR'];
  if (dir) return dir;
  return existsSync('/run/lock') ? '/run/lock' : tmpdir();
}

/**
 * One pagevault process at a time freezes a given process, host-wide. Two snapshots of one pid at once
 * (an agent's periodic one and a CLI's) overlapped: the second found the target already stopped and left
 * it to the first, which thawed it while the second was still reading — a fuzzy snapshot marked frozen.
 * A freeze now holds an flock(2) on a file per pid, taken in pid order (no deadlock between groups) and
 * waited for up to `timeoutMs`; the kernel drops it when its holder dies, so a killed agent leaves no
 * lock behind. The file is unlinked before it is unlocked, and a waiter that locked a file no longer at
 * its path tries again. Without libc (no FFI), freezes are not serialized.
 */
export async function lockFreeze(pids: readonly number[], timeoutMs: number, dir = freezeLockDir()): Promise<FreezeLock> {
  const c = libc();
  if (!c) return { thaw: () => undefined };
  const held: { fd: number; path: string }[] = [];
  const release = () => {
    for (const h of held.splice(0).reverse()) {
      try {
        unlinkSync(h.path);
      } catch {
        // already gone
      }
      c.flock(h.fd, LOCK_UN);
      closeSync(h.fd);
    }
  };
  const deadline = Date.now() + timeoutMs;
  try {
    for (const pid of [...new Set(pids)].sort((a, b) => a - b)) {
      const path = join(dir, `pagevault-freeze-${pid}.lock`);
      for (;;) {
        const fd = openSync(path, 'a+', 0o600);
        if (c.flock(fd, LOCK_EX | LOCK_NB) === 0) {
          let current = false;
          try {
            current = statSync(path).ino === fstatSync(fd).ino;
          } catch {
            // unlinked by the holder we waited for
          }
          if (current) {
            writeSync(fd, `${process.pid}\n`);
            held.push({ fd, path });
            break;
          }
          c.flock(fd, LOCK_UN);
        } else {
          const errno = c.errno();
          if (errno !== ERRNO['EWOULDBLOCK']) {
            closeSync(fd);
            throw new PvError(ErrorCodes.FREEZE_FAILED, `locking ${path} for the freeze of process ${pid} failed (${errnoName(errno)})`, { details: { pid } });
          }
        }
        closeSync(fd);
        if (Date.now() > deadline) {
          throw new PvError(ErrorCodes.FREEZE_FAILED, `process ${pid} has been frozen by another pagevault process for over ${timeoutMs} ms (${path})`, {
            retriable: true,
            details: { pid },
          });
        }
        await new Promise((r) => setTimeout(r, 5));
      }
    }
  } catch (e) {
    release();
    throw e;
  }
  return { thaw: release };
}
