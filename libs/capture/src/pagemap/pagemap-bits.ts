/**
 * Bits of a /proc/PID/pagemap entry (Documentation/admin-guide/mm/pagemap.rst). Entries are 64-bit
 * little-endian; every flag we use lives in the high 32-bit word, so the hot loop reads one Uint32 per page
 * and never builds a BigInt.
 */
export const PM_PRESENT_BIT = 63;
export const PM_SWAPPED_BIT = 62;
/** Page is file-backed or shared-anon (i.e. not a private anonymous page). */
export const PM_FILE_SHARED_BIT = 61;
/** Page is exclusively mapped (since 4.2). */
export const PM_EXCLUSIVE_BIT = 56;
/** PTE is soft-dirty (written since the last clear_refs 4). Always 0 without CONFIG_MEM_SOFT_DIRTY. */
export const PM_SOFT_DIRTY_BIT = 55;
/**
 * A guard page (madvise MADV_GUARD_INSTALL, Linux 6.13+; this bit since 6.14): a marker in the page table
 * that the kernel also reports as swapped, though it holds no page and any access to it faults.
 */
export const PM_GUARD_REGION_BIT = 58;

/** The same bits as masks over the entry's high word (bit n of the entry is bit n-32 of that word). */
export const HI_PRESENT = 1 << (PM_PRESENT_BIT - 32);
export const HI_SWAPPED = 1 << (PM_SWAPPED_BIT - 32);
export const HI_FILE_SHARED = 1 << (PM_FILE_SHARED_BIT - 32);
export const HI_EXCLUSIVE = 1 << (PM_EXCLUSIVE_BIT - 32);
export const HI_SOFT_DIRTY = 1 << (PM_SOFT_DIRTY_BIT - 32);
export const HI_GUARD = 1 << (PM_GUARD_REGION_BIT - 32);
/** Present, or swapped (a guard page reads as swapped too): the bits that say a page may hold data. */
export const HI_HELD = HI_PRESENT | HI_SWAPPED;

/** Whether an entry's high word says the page holds data: present, or swapped and not a guard page. */
export function holdsPage(hi: number): boolean {
  return (hi & HI_HELD) !== 0 && (hi & HI_GUARD) === 0;
}

export const PAGEMAP_ENTRY_BYTES = 8;

export interface PagemapEntry {
  present: boolean;
  swapped: boolean;
  fileOrSharedAnon: boolean;
  exclusive: boolean;
  softDirty: boolean;
}

/** Decodes one entry given its high 32-bit word (pure; for tests, diagnostics and the cold paths). */
export function decodePagemapHigh(hi: number): PagemapEntry {
  return {
    present: (hi & HI_PRESENT) !== 0,
    swapped: (hi & HI_SWAPPED) !== 0,
    fileOrSharedAnon: (hi & HI_FILE_SHARED) !== 0,
    exclusive: (hi & HI_EXCLUSIVE) !== 0,
    softDirty: (hi & HI_SOFT_DIRTY) !== 0,
  };
}

/** Decodes one 64-bit entry. */
export function decodePagemapEntry(entry: bigint): PagemapEntry {
  return decodePagemapHigh(Number((entry >> 32n) & 0xffffffffn));
}

/** Neither present nor swapped (or a guard page): never touched, or discarded; there is nothing to save. */
export function isUntouched(hi: number): boolean {
  return !holdsPage(hi);
}
