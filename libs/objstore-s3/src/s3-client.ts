import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { S3Client } from '@aws-sdk/client-s3';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import type { S3ObjectStoreOptions } from './s3-options.js';

/** The SDK client as pagevault wants it: bounded keep-alive sockets, our timeouts, no own retries. */
export function createS3Client(o: S3ObjectStoreOptions): S3Client {
  // Keep-alive saves a TCP (and TLS) handshake per object; maxSockets bounds connections, and so
  // requests in flight, per store. Idle sockets are unref'd by Node and do not hold the process.
  const agent = { keepAlive: true, maxSockets: o.maxSockets };
  return new S3Client({
    endpoint: o.endpoint,
    region: o.region,
    forcePathStyle: o.forcePathStyle,
    credentials: { accessKeyId: o.accessKeyId, secretAccessKey: o.secretAccessKey },
    // No retries in the SDK (maxAttempts 1): RetryingObjectStore owns retrying, with our backoff and
    // our idea of what is retriable. Two retry layers would multiply attempts and hide outages.
    maxAttempts: 1,
    // The SDK's default CRC32 checksums (aws-chunked uploads with trailers) are not understood by
    // every S3-compatible server. Puts sign the body's SHA-256 instead, which the servers verify.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    requestHandler: new NodeHttpHandler({
      httpAgent: new HttpAgent(agent),
      httpsAgent: new HttpsAgent(agent),
      connectionTimeout: Math.min(o.idleTimeoutMs ?? o.requestTimeoutMs, 5_000),
      requestTimeout: o.requestTimeoutMs,
      throwOnRequestTimeout: true, // otherwise the SDK only logs a warning and waits on
      socketTimeout: o.idleTimeoutMs ?? o.requestTimeoutMs,
    }),
  });
}
