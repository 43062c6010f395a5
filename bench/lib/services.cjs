'use strict';
// The bench's traces on the shared services: S3 prefix sizes and deletion (pagevault tenants and restic
// repositories live under prefixes of one bucket), and the Kafka topic and consumer group of the run.
const { CreateBucketCommand, DeleteBucketCommand, S3Client } = require('@aws-sdk/client-s3');
const { Kafka, logLevel } = require('kafkajs');
const { openObjectStore } = require('@pagevault/runtime');

function s3(env) {
  const store = openObjectStore({
    kind: 's3', endpoint: env.PV_S3_ENDPOINT, bucket: env.PV_S3_BUCKET, region: env.PV_S3_REGION,
    accessKeyId: env.PV_S3_ACCESS_KEY, secretAccessKey: env.PV_S3_SECRET_KEY,
  });
  return {
    store,
    /** Objects and bytes under a prefix, with the bytes of each top-level folder under it. */
    async usage(prefix) {
      const out = { objects: 0, bytes: 0, byFolder: {} };
      for await (const o of store.list(prefix)) {
        out.objects++;
        out.bytes += o.size;
        const folder = o.key.slice(prefix.length).split('/')[0];
        out.byFolder[folder] = (out.byFolder[folder] ?? 0) + o.size;
      }
      return out;
    },
    async remove(prefix) {
      const keys = [];
      for await (const o of store.list(prefix)) keys.push(o.key);
      for (let i = 0; i < keys.length; i += 32) await Promise.all(keys.slice(i, i + 32).map((k) => store.delete(k)));
      return keys.length;
    },
  };
}

/** fn with a connected Kafka admin client, disconnected afterwards. */
async function withAdmin(brokers, fn) {
  const admin = new Kafka({ clientId: 'pv-bench-admin', brokers, logLevel: logLevel.NOTHING, retry: { retries: 2 } }).admin();
  await admin.connect();
  try {
    return await fn(admin);
  } finally {
    await admin.disconnect();
  }
}

function removeKafka(brokers, topic, groupId) {
  return withAdmin(brokers, async (admin) => {
    await admin.deleteGroups([groupId]).catch(() => undefined);
    await admin.deleteTopics({ topics: [topic], timeout: 10_000 }).catch(() => undefined);
  });
}

/** Each partition's end offset: where the next record produced to it will be. */
function topicEnds(brokers, topic) {
  return withAdmin(brokers, async (admin) => (await admin.fetchTopicOffsets(topic)).map((p) => ({ partition: p.partition, offset: p.offset })));
}

/** Sets a consumer group (not running) to start at these offsets. */
function startGroupAt(brokers, groupId, topic, partitions) {
  return withAdmin(brokers, (admin) => admin.setOffsets({ groupId, topic, partitions }));
}

function s3Client(env) {
  return new S3Client({
    endpoint: env.PV_S3_ENDPOINT, region: env.PV_S3_REGION, forcePathStyle: true,
    credentials: { accessKeyId: env.PV_S3_ACCESS_KEY, secretAccessKey: env.PV_S3_SECRET_KEY },
  });
}

/** A bucket of the run's own beside the shared one (same server and credentials): its env. */
async function createBucket(env, bucket) {
  await s3Client(env).send(new CreateBucketCommand({ Bucket: bucket }));
  return { ...env, PV_S3_BUCKET: bucket };
}

/** Every object of a bucket made by createBucket, then the bucket. */
async function dropBucket(env) {
  await s3(env).remove('');
  await s3Client(env).send(new DeleteBucketCommand({ Bucket: env.PV_S3_BUCKET }));
}

module.exports = { s3, removeKafka, topicEnds, startGroupAt, createBucket, dropBucket };
