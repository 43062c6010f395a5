import { ErrorCodes, PvError } from '@pagevault/errors';

/**
 * A JSON request body as the object it must be, holding no field but `known`: a misspelt field (say
 * "parnet") fails the request instead of being dropped, which would quietly change what it does.
 */
export function requestBody<T extends object>(body: unknown, known: readonly (keyof T & string)[]): T {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new PvError(ErrorCodes.INVALID_ARGUMENT, 'the request body must be a JSON object');
  }
  const unknown = Object.keys(body).filter((k) => !(known as readonly string[]).includes(k));
  if (unknown.length > 0) {
    throw new PvError(ErrorCodes.INVALID_ARGUMENT, `unknown field${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')} (known: ${known.join(', ')})`, {
      details: { unknown },
    });
  }
  return body as T;
}

/**
 * A request value for an error message: JSON, cut to 60 characters. Never throws (a value nested
 * thousands deep overflows JSON.stringify's stack) and never echoes a whole hostile body back.
 */
export function shown(v: unknown): string {
  let text: string;
  try {
    text = JSON.stringify(v) ?? String(v);
  } catch {
    text = Array.isArray(v) ? '[…]' : typeof v === 'object' && v !== null ? '{…}' : typeof v;
  }
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}
