export { PageHasher, configurePageHasher, hashPagesSync, pageHasher } from './page-hasher';
