export { restoreFrames, restoreSnapshot, type RestoreOptions } from './restore-frames';
export * from './outputs';
