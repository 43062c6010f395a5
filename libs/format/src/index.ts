export * from './constants';
export * from './types';
export * from './ids';
export { decodeFrame, FrameSplitter, type DecodeOptions } from './frame';
export { FramePool } from './frame-pool';
export { DIRECT_ALIGN, alignUp, alignedBuffer, paddedView, writeFullyAt, writeFullyAtSync } from './aligned-buffer';
export { FrameSealer, frameSealer } from './frame-sealer';
export { SnapshotWriter, type SnapshotWriterOptions } from './snapshot-writer';
export { StreamValidator } from './stream-validator';
export {
  encodeSnapshotBegin, encodeVmaBegin, encodePageChunk, encodeRuns, encodeVmaEnd, encodeSnapshotEnd, encodeAbort,
} from './v1/encode';
