export { PageHasher, configurePageHasher, pageHasher } from './page-hasher';
