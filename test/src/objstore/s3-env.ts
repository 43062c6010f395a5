import { S3ObjectStore, type S3ObjectStoreOptions } from '@pagevault/objstore-s3';

/** The S3 server under test, from the same variables as scripts/stack-env.sh (and its defaults). */
export const s3Env = {
  endpoint: process.env.PV_S3_ENDPOINT || 'http://127.0.0.1:8333',
  bucket: process.env.PV_S3_BUCKET || 'pagevault',
  region: process.env.PV_S3_REGION || 'us-east-1',
  accessKeyId: process.env.PV_S3_ACCESS_KEY || 'pagevault-dev',
  // The dev-only secret deploy/local/start.sh configures SeaweedFS with.
  secretAccessKey: process.env.PV_S3_SECRET_KEY || 'pagevault-dev-secret-7c1f0e9a52b84d36',
};

export function s3Store(patch: Partial<S3ObjectStoreOptions> = {}): S3ObjectStore {
  return new S3ObjectStore({
    ...s3Env,
    forcePathStyle: true,
    requestTimeoutMs: 30_000,
    maxSockets: 32,
    ...patch,
  });
}

/**
 * Fails loudly when the server is not there: an integration test that quietly skips proves nothing.
 */
export async function requireS3Server(store: S3ObjectStore): Promise<void> {
  try {
    await store.head('pagevault-integration/reachability-probe');
  } catch (e) {
    throw new Error(
      `The S3 server for the integration tests is not usable: ${(e as Error).message}\n` +
        `  endpoint ${s3Env.endpoint}, bucket ${s3Env.bucket}, access key ${s3Env.accessKeyId}\n` +
        `  Start the local stack with \`npm run stack:start\` (deploy/local/start.sh), ` +
        `or point PV_S3_ENDPOINT / PV_S3_BUCKET / PV_S3_ACCESS_KEY / PV_S3_SECRET_KEY at a running S3.`,
      { cause: e },
    );
  }
}
