import { Worker } from 'node:worker_threads';
import { CRC32C_DECLS, nativeCrc32cLib, watchHelperBoot } from '@pagevault/hashing';
import koffi from 'koffi';
import { HEADER_BYTES } from './constants';
import { CRC_OFFSET, frameCrc } from './v1/header';

// Shared control block: the count of requests submitted, whether the helper has loaded its libraries,
// then per ring slot its state, frame length and CRC (int32 words), and the frame's address (float64
// words after them).
const SLOTS = 64;
const SUBMITTED = 0;
const BOOTED = 1;
const STATE = 2;
const LEN = STATE + SLOTS;
const CRC = LEN + SLOTS;
const INT_WORDS = CRC + SLOTS;
const ADDR_WORD = Math.ceil(INT_WORDS / 2); // first float64 word after the int32 ones
const CTRL_BYTES = (ADDR_WORD + SLOTS) * 8;

// A slot's states. The helper claims QUEUED → CLAIMED; the writer takes over QUEUED → TAKEN when it
// needs a CRC the helper has not started, so it never waits for a helper that is not running.
const FREE = 0;
const QUEUED = 1;
const CLAIMED = 2;
const DONE = 3;
const TAKEN = 4;

/** How long a writer waits for a CRC the helper claimed before it stops using the helper. */
const HELPER_TIMEOUT_MS = 10_000;

const WORKER_SOURCE = `
const { workerData } = require('node:worker_threads');
const { ctrl: sab, koffi: koffiPath, crc: crcPath, lib, frameDecl, headerBytes, crcOffset } = workerData;
const koffi = require(koffiPath);
const ctrl = new Int32Array(sab);
const addr = new Float64Array(sab);
let frameCrc;
if (lib) {
  // The native CRC the writer's thread checked (@pagevault/hashing), reading the frame by address.
  const f = koffi.load(lib).func(frameDecl);
  frameCrc = (a, len) => f(a, len, crcOffset, headerBytes);
} else {
  const { crc32c } = require(crcPath);
  // Views over the writer's frames by address; frames are recycled through a FramePool, so few addresses.
  const views = new Map();
  frameCrc = (a, len) => {
    let v = views.get(a);
    if (!v || v.length !== len) {
      if (views.size >= 256) views.clear();
      v = Buffer.from(koffi.view(BigInt(a), len));
      views.set(a, v);
    }
    return crc32c(v.subarray(headerBytes), crc32c(v.subarray(0, crcOffset)));
  };
}
Atomics.store(ctrl, ${BOOTED}, 1);
let next = 0;
for (;;) {
  Atomics.wait(ctrl, ${SUBMITTED}, next);
  const submitted = Atomics.load(ctrl, ${SUBMITTED});
  for (; next !== submitted; next = (next + 1) | 0) {
    const s = next & ${SLOTS - 1};
    if (Atomics.compareExchange(ctrl, ${STATE} + s, ${QUEUED}, ${CLAIMED}) !== ${QUEUED}) continue;
    ctrl[${CRC} + s] = frameCrc(addr[${ADDR_WORD} + s], ctrl[${LEN} + s]);
    Atomics.store(ctrl, ${STATE} + s, ${DONE});
    Atomics.notify(ctrl, ${STATE} + s);
  }
}
`;

/**
 * Computes frame CRCs on a helper thread while the writer goes on filling the next frame. A page-chunk
 * frame's CRC32C cost ~0.23 ms a MiB with @node-rs/crc32 (~4.4 GiB/s here): on the capture thread it was a
 * third of a capture, as much time as process_vm_readv itself. With @pagevault/hashing's native CRC
 * (~15 GB/s) it is ~0.06 ms, still taken off the capture thread. A frame is submitted with its header
 * written and its CRC field empty; the helper reads it in place (by address: the writer keeps the frame
 * and does not emit or touch it until `finish`), and `finish` writes the CRC into the frame. Whatever
 * the helper has not started when its CRC is needed is computed by the caller instead, so a busy or
 * stalled second core costs at most the frame the helper is in the middle of. Synchronous throughout: no
 * promise or message per frame. One sealer serves every writer of the process (requests are tickets in
 * one ring); the helper starts on first use and never keeps the process alive (settleHelperThreads in
 * @pagevault/hashing before an exit: a helper must not be loading its libraries then).
 */
export class FrameSealer {
  private readonly ctrl = new Int32Array(new SharedArrayBuffer(CTRL_BYTES));
  private readonly addr = new Float64Array(this.ctrl.buffer);
  private readonly frames: (Buffer | undefined)[] = new Array<Buffer | undefined>(SLOTS);
  private submitted = 0;
  private worker: Worker | undefined;
  private broken = false;

  /** A ticket for frame's CRC, or -1 when the ring is full (seal it inline then). */
  submit(frame: Buffer): number {
    const s = this.submitted & (SLOTS - 1);
    if (this.broken || this.ctrl[STATE + s] !== FREE) return -1;
    this.start();
    this.frames[s] = frame;
    this.ctrl[LEN + s] = frame.length;
    this.addr[ADDR_WORD + s] = Number(koffi.address(frame));
    Atomics.store(this.ctrl, STATE + s, QUEUED);
    const ticket = this.submitted;
    this.submitted = (this.submitted + 1) | 0;
    Atomics.store(this.ctrl, SUBMITTED, this.submitted);
    Atomics.notify(this.ctrl, SUBMITTED);
    return ticket;
  }

  /** Whether the ticket's CRC is ready without waiting. */
  ready(ticket: number): boolean {
    return Atomics.load(this.ctrl, STATE + (ticket & (SLOTS - 1))) === DONE;
  }

  /** Writes the ticket's CRC into its frame (computing it here if the helper has not started it). */
  finish(ticket: number): void {
    const s = ticket & (SLOTS - 1);
    const frame = this.frames[s];
    if (!frame || Atomics.load(this.ctrl, STATE + s) === FREE) throw new Error(`frame sealer: ticket ${ticket} is not pending`);
    let crc: number;
    if (Atomics.compareExchange(this.ctrl, STATE + s, QUEUED, TAKEN) === QUEUED || !this.awaitHelper(s)) {
      crc = frameCrc(frame);
    } else {
      crc = this.ctrl[CRC + s]! >>> 0;
    }
    frame.writeUInt32LE(crc, CRC_OFFSET);
    this.frames[s] = undefined;
    Atomics.store(this.ctrl, STATE + s, FREE);
  }

  /** Waits for a CRC the helper claimed; false (and the helper no longer used) when it does not come. */
  private awaitHelper(s: number): boolean {
    const deadline = Date.now() + HELPER_TIMEOUT_MS;
    for (;;) {
      const st = Atomics.load(this.ctrl, STATE + s);
      if (st === DONE) return true;
      const left = deadline - Date.now();
      if (left <= 0) {
        // The helper may still read this frame: keep it reachable for good, and stop using the helper.
        quarantined.push(this.frames[s]);
        this.broken = true;
        void this.worker?.terminate();
        return false;
      }
      Atomics.wait(this.ctrl, STATE + s, st, left);
    }
  }

  /**
   * Starts the helper thread now rather than at the first frame: frameSealer() does, so the thread boots
   * (~30–50 ms) while a capture reads the target's maps and freezes it, not while the target is frozen.
   */
  start(): void {
    if (this.worker || this.broken) return;
    const workerData = {
      ctrl: this.ctrl.buffer,
      koffi: require.resolve('koffi'),
      crc: require.resolve('@node-rs/crc32'),
      lib: nativeCrc32cLib,
      frameDecl: CRC32C_DECLS.frame,
      headerBytes: HEADER_BYTES,
      crcOffset: CRC_OFFSET,
    };
    this.worker = new Worker(WORKER_SOURCE, { eval: true, workerData });
    this.worker.unref(); // blocked in Atomics.wait between frames: it must not keep the process alive
    this.worker.on('error', () => (this.broken = true));
    watchHelperBoot(this.worker, this.ctrl, BOOTED);
  }
}

/** Frames a helper that stopped answering was reading: kept reachable so a late read finds them. */
const quarantined: unknown[] = [];

let shared: FrameSealer | undefined;

/** The process's frame sealer, shared by every SnapshotWriter given it (calls are synchronous). */
export function frameSealer(): FrameSealer {
  if (!shared) {
    shared = new FrameSealer();
    shared.start();
  }
  return shared;
}
