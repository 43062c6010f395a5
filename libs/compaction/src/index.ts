export { CompactionService, type CompactionOptions, type CompactionEvents } from './compaction-service';
export { DeadLetters, UNIDENTIFIED, type DeadLetterLog } from './dead-letter';
export { OffsetTracker } from './offset-tracker';
