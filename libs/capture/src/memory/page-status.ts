/** Status of each page of a read batch (one byte per page in a reused Uint8Array). */
export const PAGE_PENDING = 0;
export const PAGE_OK = 1;
export const PAGE_FAILED = 2;
/** Left for a second pass through /proc/PID/mem (process_vm_readv skips it). */
export const PAGE_DEFERRED = 3;
