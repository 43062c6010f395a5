import { ErrorCodes, PvError } from '@pagevault/errors';

/**
 * Validates a send() call as a whole before any of its frames is queued, so a rejected call leaves
 * nothing of the snapshot in the log.
 */
export function checkFrames(key: string, frames: readonly Buffer[], maxFrameBytes: number): void {
  if (typeof key !== 'string' || key.length === 0) {
    throw new PvError(
      ErrorCodes.INVALID_ARGUMENT,
      'frame key must be a non-empty string (the snapshot id in hex)',
    );
  }
  if (!Array.isArray(frames)) {
    throw new PvError(ErrorCodes.INVALID_ARGUMENT, `frames of snapshot ${key} must be an array of Buffers`);
  }
  frames.forEach((frame, index) => {
    if (!Buffer.isBuffer(frame)) {
      throw new PvError(ErrorCodes.INVALID_ARGUMENT, `frame ${index} of snapshot ${key} is not a Buffer`, {
        details: { snapshot: key, index },
      });
    }
    if (frame.length > maxFrameBytes) {
      throw new PvError(
        ErrorCodes.FRAME_TOO_LARGE,
        `frame ${index} of snapshot ${key} is ${frame.length} bytes, over the frame log's limit of ${maxFrameBytes}`,
        { details: { snapshot: key, index, bytes: frame.length, maxFrameBytes } },
      );
    }
  });
}

/** Option checks done once at construction, with the option named in the message. */
export function requirePositiveInt(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new PvError(
      ErrorCodes.CONFIG_INVALID,
      `frame log option ${name} must be a positive integer, got ${value}`,
    );
  }
  return value;
}
