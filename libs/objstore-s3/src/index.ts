export { S3ObjectStore } from './s3-object-store.js';
export { validateS3Options, type S3ObjectStoreOptions } from './s3-options.js';
export { mapS3Error, type S3ErrorContext } from './s3-errors.js';
