// The embedded pipeline as a library, for programs that snapshot from their own process (the bench,
// tests): the CLI's context, its in-process pipeline and one snapshot through them. The command itself
// is main.ts (bin/pagevault.js).
export { KEPT_TABLES, openContext, type Context, type GlobalOptions } from './context';
export { Pipeline } from './pipeline';
export { takeSnapshot, type SnapshotOutcome, type SnapshotRequest } from './commands/snapshot';
