import { createHash } from 'node:crypto';
import { ErrorCodes, PvError, exactJson } from '@pagevault/errors';
import type { VmaHeader } from '@pagevault/format';
import type { MapRoot } from './page-map';

/**
 * The root of a snapshot, written last: everything it references (packs, index files, page-map nodes)
 * MUST be durable before it is written, and a snapshot exists iff its manifest does.
 */
export interface Manifest {
  format: 'pagevault.manifest.v1';
  snapshotId: string;
  tenant: string;
  host: string;
  pid: number;
  cmdline: string;
  pageSize: number;
  startTimeMs: number;
  committedAtMs: number;
  parentId?: string;
  groupId?: string;
  mode: 'full' | 'incremental';
  consistency: 'frozen' | 'live' | 'precopy';
  vmas: ManifestVma[];
  counts: {
    vmas: number;
    dataPages: number;
    zeroPages: number;
    filePages: number;
    /** Pages the stream sent as "same as parent" (resolved into the map above). */
    parentPages: number;
    /**
     * Pages this snapshot added to the tenant's store, and their compressed bytes (its share of the packs
     * written while it was ingested, when other snapshots of the tenant were ingested beside it).
     */
    newPages: number;
    newBytes: number;
    /** New pages stored as deltas against the parent's page at their address (absent: none). */
    deltaPages?: number;
    /** Of their bases, those read back from the store (the rest were still in the compactor's memory). */
    basesFetched?: number;
    mapNodesWritten: number;
    mapBytesWritten: number;
  };
  /** Hex of the stream digest from snapshot-end. */
  streamDigest: string;
  /**
   * SHA-256 (hex) of the manifest without this field, as compact exactJson in its own key order: a
   * manifest is named by its snapshot id, not by its bytes, so this is what tells damage that leaves
   * valid JSON (a flipped digit in an address or a permission). Always written last; manifests from
   * before it have none and are read unchecked.
   */
  checksum?: string;
}

export type ManifestVma = Omit<VmaHeader, 'index'> & {
  index: number;
  map?: MapRoot;
  pages: { data: number; zero: number; file: number };
};

export interface FailedSnapshot {
  format: 'pagevault.failed.v1';
  snapshotId: string;
  tenant?: string;
  code: string;
  reason: string;
  failedAtMs: number;
  partition?: number;
  firstOffset?: string;
}

/** The bytes a manifest is stored as: its fields, then its checksum (see Manifest.checksum). */
export function manifestBytes(m: Manifest): Buffer {
  const { checksum: _old, ...fields } = m;
  return Buffer.from(exactJson({ ...fields, checksum: manifestChecksum(fields) }, 1));
}

function manifestChecksum(fields: object): string {
  return createHash('sha256').update(exactJson(fields)).digest('hex');
}

/**
 * Parses a stored manifest; anything but a v1 manifest with a VMA list, or one whose checksum does not
 * match its fields, is PV_OBJECT_CORRUPT naming the key.
 */
export function parseManifest(bytes: Buffer, key: string): Manifest {
  const bad = (why: string, cause?: unknown) => new PvError(ErrorCodes.OBJECT_CORRUPT, `manifest ${key}: ${why}`, { cause, details: { key } });
  let m: Manifest;
  try {
    m = JSON.parse(bytes.toString('utf8')) as Manifest;
  } catch (e) {
    throw bad('not JSON', e);
  }
  if (m?.format !== 'pagevault.manifest.v1') throw bad(`unknown manifest format ${String(m?.format)}`);
  if (!Array.isArray(m.vmas)) throw bad('no VMA list');
  if (m.checksum !== undefined) {
    const { checksum, ...fields } = m;
    if (checksum !== manifestChecksum(fields)) throw bad('its checksum does not match its fields (damaged in the store)');
  }
  return m;
}
