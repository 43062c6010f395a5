export { KafkaFrameLog } from './kafka-frame-log';
export type { KafkaFrameLogOptions } from './kafka-options';
export { patchKafkajsCrc32c, nativeCrc32c, type Crc32cPatchState } from './crc32c-patch';
export { patchKafkajsEncoder } from './encoder-patch';
export { patchKafkajsRecordBatch, type RecordBatchPatchState } from './record-batch-patch';
export { toLogError } from './kafka-errors';
export { textHeaders } from './kafka-frame-consumer';
