import { hash } from 'node:crypto';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type GetObjectCommandOutput,
  type S3Client,
} from '@aws-sdk/client-s3';
import { ErrorCodes, isPvError, PvError } from '@pagevault/errors';
import {
  objectShorter,
  validateObjectKey,
  validateObjectPrefix,
  validateRange,
  type ObjectInfo,
  type ObjectStore,
} from '@pagevault/objstore';
import { createS3Client } from './s3-client.js';
import { mapS3Error } from './s3-errors.js';
import { validateS3Options, type S3ObjectStoreOptions } from './s3-options.js';

/**
 * The object store on an S3-compatible service (AWS, SeaweedFS, MinIO): one PUT per object
 * (atomic in S3), ranged GETs, ListObjectsV2 in pages of 1000. Memory: one object body per
 * request in flight (bounded by maxSockets) and one list page per listing.
 */
export class S3ObjectStore implements ObjectStore {
  readonly description: string;
  private readonly client: S3Client;
  private readonly bucket: string;
  private readonly endpoint: string;

  constructor(options: S3ObjectStoreOptions) {
    const o = validateS3Options(options);
    this.client = createS3Client(o);
    this.bucket = o.bucket;
    this.endpoint = o.endpoint;
    this.description = `s3://${o.bucket}`;
  }

  /**
   * One PUT whose signed x-amz-content-sha256 is the body's real SHA-256, so the server refuses a body
   * damaged on the way (XAmzContentSHA256Mismatch; AWS, SeaweedFS and MinIO check it). The hash is the
   * caller's when it knows it (a pack is named by it), else one pass here: it replaces both the
   * Content-MD5 pass and the SDK's own payload hash (two passes over every pack before).
   */
  async put(key: string, body: Uint8Array, sha256?: string): Promise<void> {
    validateObjectKey(key);
    const sha = sha256 ?? (hash('sha256', body, 'hex') as string);
    const input = { Bucket: this.bucket, Key: key, Body: body, ContentLength: body.byteLength };
    await this.call('put', key, () => {
      const cmd = new PutObjectCommand(input);
      cmd.middlewareStack.add(
        (next) => (args) => {
          (args.request as { headers: Record<string, string> }).headers['x-amz-content-sha256'] = sha;
          return next(args);
        },
        { step: 'build', name: 'pagevaultPayloadSha256' },
      );
      return this.client.send(cmd);
    });
  }

  async get(key: string): Promise<Buffer> {
    validateObjectKey(key);
    const out = await this.call('get', key, () =>
      this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key })),
    );
    return this.body('get', key, out);
  }

  async getRange(key: string, offset: number, length: number, into?: Buffer): Promise<Buffer> {
    validateObjectKey(key);
    validateRange(key, offset, length);
    if (length === 0) return this.emptyRange(key, offset); // HTTP cannot ask for zero bytes
    const Range = `bytes=${offset}-${offset + length - 1}`;
    const input = { Bucket: this.bucket, Key: key, Range };
    let out: GetObjectCommandOutput;
    try {
      out = await this.call('getRange', key, () => this.client.send(new GetObjectCommand(input)));
    } catch (e) {
      // 416: the range starts at or past the end of an object that does exist.
      if (!(isPvError(e) && e.details.status === 416)) throw e;
      throw objectShorter(key, this.description, offset, length, (await this.head(key))?.size ?? 0);
    }
    // The range as asked (Content-Range present) read straight into the caller's buffer: no allocation.
    if (into && into.length >= length && out.ContentRange !== undefined && out.Body) {
      const got = await this.call('getRange', key, () => readInto(out.Body as AsyncIterable<Uint8Array>, into));
      if (got < length) throw objectShorter(key, this.description, offset, length, offset + got);
      if (got > length) throw new PvError(ErrorCodes.OBJECT_CORRUPT, `${key}: ${this.description} answered ${got} bytes for a range of ${length}`, { details: { key } });
      return into.subarray(0, length);
    }
    let body = await this.body('getRange', key, out);
    // A server that ignores Range answers 200 with the whole object: cut the range out ourselves.
    if (out.ContentRange === undefined && body.length > length) body = body.subarray(offset, offset + length);
    if (body.length < length)
      throw objectShorter(key, this.description, offset, length, offset + body.length);
    return body;
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    validateObjectKey(key);
    try {
      const input = { Bucket: this.bucket, Key: key };
      const out = await this.call('head', key, () => this.client.send(new HeadObjectCommand(input)));
      return { key, size: out.ContentLength ?? 0 };
    } catch (e) {
      if (isPvError(e, ErrorCodes.OBJECT_NOT_FOUND)) return undefined;
      throw e;
    }
  }

  async *list(prefix: string): AsyncGenerator<ObjectInfo> {
    validateObjectPrefix(prefix);
    let ContinuationToken: string | undefined;
    do {
      const input = { Bucket: this.bucket, Prefix: prefix || undefined, ContinuationToken, MaxKeys: 1000 };
      const page = await this.call('list', prefix || '(whole bucket)', () =>
        this.client.send(new ListObjectsV2Command(input)),
      );
      for (const item of page.Contents ?? []) {
        if (item.Key === undefined) continue;
        const modifiedMs = item.LastModified?.getTime();
        yield { key: item.Key, size: item.Size ?? 0, ...(modifiedMs !== undefined ? { modifiedMs } : {}) };
      }
      ContinuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (ContinuationToken);
  }

  async delete(key: string): Promise<void> {
    validateObjectKey(key);
    try {
      await this.call('delete', key, () =>
        this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key })),
      );
    } catch (e) {
      if (!isPvError(e, ErrorCodes.OBJECT_NOT_FOUND)) throw e; // already gone is what we wanted
    }
  }

  /** Closes the keep-alive sockets; the store is unusable afterwards. */
  destroy(): void {
    this.client.destroy();
  }

  private async emptyRange(key: string, offset: number): Promise<Buffer> {
    const info = await this.head(key);
    if (!info)
      throw mapS3Error(
        { name: 'NotFound', $metadata: { httpStatusCode: 404 } },
        this.context('getRange', key),
      );
    if (offset > info.size) throw objectShorter(key, this.description, offset, 0, info.size);
    return Buffer.alloc(0);
  }

  private async body(operation: string, key: string, out: GetObjectCommandOutput): Promise<Buffer> {
    const bytes = await this.call(operation, key, async () =>
      out.Body ? out.Body.transformToByteArray() : new Uint8Array(),
    );
    const body = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (out.ContentLength !== undefined && body.length !== out.ContentLength) {
      throw new PvError(
        ErrorCodes.STORE_UNAVAILABLE,
        `${operation} of ${key} in bucket ${this.bucket} at ${this.endpoint}: response truncated ` +
          `(${body.length} of ${out.ContentLength} bytes)`,
        { retriable: true, details: { key, bucket: this.bucket, endpoint: this.endpoint } },
      );
    }
    return body;
  }

  private async call<T>(operation: string, key: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (e) {
      throw mapS3Error(e, this.context(operation, key));
    }
  }

  private context(operation: string, key: string) {
    return { operation, key, bucket: this.bucket, endpoint: this.endpoint };
  }
}

/** Copies a response body into buf; the byte count, which may pass buf's length (nothing is written past it). */
async function readInto(body: AsyncIterable<Uint8Array>, buf: Buffer): Promise<number> {
  let n = 0;
  for await (const chunk of body) {
    if (n + chunk.length <= buf.length) buf.set(chunk, n);
    n += chunk.length;
  }
  return n;
}
