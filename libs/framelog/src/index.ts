export * from './frame-log';
export { partitionForKey, murmur2 } from './partition-for-key';
export { checkFrames, requirePositiveInt } from './check-frames';
export {
  BatchingFrameProducer,
  type BatchingFrameProducerOptions,
  type OutboundFrame,
} from './batching-frame-producer';
export { stderrJsonSink, type LogEntry, type LogLevel, type LogSink } from './log-sink';
export { InProcessFrameLog, type InProcessFrameLogOptions } from './in-process/in-process-frame-log';
export { SpoolingFrameProducer, withSpool, type SpoolOptions } from './spooling-frame-producer';
