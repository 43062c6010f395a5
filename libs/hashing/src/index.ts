export { PageHasher, configurePageHasher, pageHasher, pageHashing, settlePageHasher } from './page-hasher';
