export { CompactionService, type CompactionOptions, type CompactionEvents } from './compaction-service';
export { OffsetTracker } from './offset-tracker';
