export { CompactionService, type CompactionOptions, type CompactionEvents } from './compaction-service';
export { DeadLetters, UNIDENTIFIED, REASON_MAX_BYTES, deadLetterHeaders, type DeadLetterLog, type DeadLetterOptions } from './dead-letter';
export { OffsetTracker } from './offset-tracker';
