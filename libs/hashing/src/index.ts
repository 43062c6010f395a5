export { PageHasher, configurePageHasher, pageHasher, pageHashing } from './page-hasher';
