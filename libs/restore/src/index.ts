export { restoreFrames, type RestoreOptions } from './restore-frames';
export * from './outputs';
