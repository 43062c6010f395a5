export type { ObjectInfo, ObjectStore } from './object-store.js';
export { validateObjectKey, validateObjectPrefix, validateRange } from './object-key.js';
export { objectNotFound, objectShorter } from './object-errors.js';
export { DirectoryObjectStore } from './directory-object-store.js';
export { RetryingObjectStore, type RetryEvent, type RetryOptions } from './retrying-object-store.js';
export { ConcurrencyLimitedObjectStore } from './concurrency-limited-object-store.js';
export { forEachLimited } from './for-each-limited.js';
export { mkdirp } from './fs-errors.js';
