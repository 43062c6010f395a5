/** Restore outputs: a full snapshot's frames turned into files or a live process's memory. */
export type { CommonOutputOptions, FileOutputOptions, FileRoot, MissingFile, OutputStats, PageCounts } from './output-types';
export { walkSnapshot, type EndInfo, type SnapshotInput, type SnapshotSource, type SnapshotVisitor } from './snapshot-walk';
export { RAW_MARKER, writeRawImages, type RawImagesOptions, type RawImagesStats } from './raw-images';
export { imageName, type RawLayout, type RawVmaEntry, type SnapshotInfo } from './raw-layout';
export { writeElfCore, type ElfCoreOptions, type ElfCoreStats } from './elf-core';
export { readElfCore, readSegment, parseNotes, type ElfCoreInfo, type ElfNote } from './elf-reader';
export { ELF, type ProgramHeader } from './elf-layout';
export { NT } from './elf-notes';
export { writeLiveProcess, type LiveProcessOptions, type LiveProcessStats } from './live-process';
export { FrameAppender, writeStream, type StreamOutputOptions, type StreamStats } from './stream-file';
export { atomicFile, checkOutput } from './atomic-output';
export { openOutputFile, type OutputFile } from './output-file';
export { kindName, perms, vmaNote } from './vma-util';
export { mappedFileProblem } from './file-pages';
