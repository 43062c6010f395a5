export { PageHasher, configurePageHasher, pageHasher, pageHashing, sha256Implementation } from './page-hasher';
export { helperThreadsStarting, settleHelperThreads, watchHelperBoot } from './helper-threads';
export { PAGE_HASH_BYTES, type NativeSha256, type PageHashKind } from './native-lib';
export { CRC32C_DECLS, crc32c, crc32cImplementation, frameCrc32c, loadNativeCrc32c, nativeCrc32cLib, type Crc32c } from './crc32c';
