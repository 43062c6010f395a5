'use strict';
// The bench's traces on the shared services: S3 prefix sizes and deletion (pagevault tenants and restic
// repositories live under prefixes of one bucket), and the Kafka topic and consumer group of the run.
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

async function removeKafka(brokers, topic, groupId) {
  const admin = new Kafka({ clientId: 'pv-bench-admin', brokers, logLevel: logLevel.NOTHING, retry: { retries: 2 } }).admin();
  await admin.connect();
  try {
    await admin.deleteGroups([groupId]).catch(() => undefined);
    await admin.deleteTopics({ topics: [topic], timeout: 10_000 }).catch(() => undefined);
  } finally {
    await admin.disconnect();
  }
}

/** Each partition's end offset: where the next record produced to it will be. */
async function topicEnds(brokers, topic) {
  const admin = new Kafka({ clientId: 'pv-bench-admin', brokers, logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  try {
    return (await admin.fetchTopicOffsets(topic)).map((p) => ({ partition: p.partition, offset: p.offset }));
  } finally {
    await admin.disconnect();
  }
}

/** Sets a consumer group (not running) to start at these offsets. */
async function startGroupAt(brokers, groupId, topic, partitions) {
  const admin = new Kafka({ clientId: 'pv-bench-admin', brokers, logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  try {
    await admin.setOffsets({ groupId, topic, partitions });
  } finally {
    await admin.disconnect();
  }
}

module.exports = { s3, removeKafka, topicEnds, startGroupAt };
