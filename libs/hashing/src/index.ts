export { PageHasher, configurePageHasher, pageHasher, pageHashing, settlePageHasher } from './page-hasher';
export { PAGE_HASH_BYTES, type PageHashKind } from './native-lib';
