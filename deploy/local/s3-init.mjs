// S3 readiness check and bucket bootstrap for the local stack.
//
//   node deploy/local/s3-init.mjs wait    # signed ListBuckets until it answers, then
//                                          # create PV_S3_BUCKET if missing and check
//                                          # that anonymous requests are refused
//   node deploy/local/s3-init.mjs check   # one signed HeadBucket + anonymous check
//
// Reads the PV_S3_* variables (see scripts/stack-env.sh). Timeout for `wait`:
// PV_STACK_START_TIMEOUT seconds (default 120). Exit 0 on success, 1 otherwise.
import { CreateBucketCommand, HeadBucketCommand, ListBucketsCommand, S3Client } from '@aws-sdk/client-s3';

const env = (name) => {
  const v = process.env[name];
  if (!v) {
    console.error(`[s3-init] ${name} is not set (source scripts/stack-env.sh)`);
    process.exit(1);
  }
  return v;
};

const endpoint = env('PV_S3_ENDPOINT');
const bucket = env('PV_S3_BUCKET');
const timeoutS = Number(process.env.PV_STACK_START_TIMEOUT || 120);

const s3 = new S3Client({
  endpoint,
  region: env('PV_S3_REGION'),
  forcePathStyle: true,
  credentials: {
    accessKeyId: env('PV_S3_ACCESS_KEY'),
    secretAccessKey: env('PV_S3_SECRET_KEY'),
  },
  maxAttempts: 1,
  requestHandler: { requestTimeout: 5000, connectionTimeout: 2000 },
});

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const describe = (e) => `${e?.name ?? 'Error'}: ${e?.message ?? e}`;

async function waitForS3() {
  const deadline = Date.now() + timeoutS * 1000;
  let last;
  while (Date.now() < deadline) {
    try {
      await s3.send(new ListBucketsCommand({}));
      return;
    } catch (e) {
      last = e;
      // Wrong credentials will not fix themselves: fail fast.
      const code = e?.name ?? '';
      if (/InvalidAccessKeyId|SignatureDoesNotMatch|AccessDenied/.test(code)) break;
    }
    await sleep(1000);
  }
  throw new Error(`S3 at ${endpoint} did not answer a signed ListBuckets: ${describe(last)}`);
}

async function bucketExists() {
  try {
    await s3.send(new HeadBucketCommand({ Bucket: bucket }));
    return true;
  } catch (e) {
    if (e?.$metadata?.httpStatusCode === 404 || e?.name === 'NotFound') return false;
    throw e;
  }
}

async function ensureBucket() {
  if (await bucketExists()) return false;
  try {
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  } catch (e) {
    if (!/BucketAlreadyOwnedByYou|BucketAlreadyExists/.test(e?.name ?? '')) throw e;
  }
  return true;
}

// Unsigned requests must be refused: the stack runs with an identities file,
// never in allow-all mode.
async function checkAnonymousRefused() {
  const res = await fetch(`${endpoint}/${bucket}?list-type=2`, {
    signal: AbortSignal.timeout(5000),
  });
  await res.arrayBuffer();
  if (res.status !== 401 && res.status !== 403) {
    throw new Error(
      `anonymous GET ${endpoint}/${bucket} answered HTTP ${res.status}; expected 403 (S3 auth is not enforced)`,
    );
  }
}

async function main() {
  const mode = process.argv[2] ?? 'wait';
  if (mode === 'wait') {
    await waitForS3();
    const created = await ensureBucket();
    await checkAnonymousRefused();
    console.log(`[s3-init] ${endpoint} ready, bucket ${bucket} ${created ? 'created' : 'exists'}`);
  } else if (mode === 'check') {
    if (!(await bucketExists())) throw new Error(`bucket ${bucket} does not exist`);
    await checkAnonymousRefused();
    console.log(`[s3-init] ${endpoint} ok, bucket ${bucket} exists`);
  } else {
    throw new Error(`unknown mode ${mode} (wait|check)`);
  }
}

main().catch((e) => {
  console.error(`[s3-init] ${describe(e)}`);
  process.exit(1);
});
