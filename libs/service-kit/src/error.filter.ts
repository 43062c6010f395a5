import { type ArgumentsHost, Catch, type ExceptionFilter, HttpException, NotFoundException } from '@nestjs/common';
import { ErrorCodes, PvError, type ErrorCode } from '@pagevault/errors';

const STATUS: Partial<Record<ErrorCode, number>> = {
  [ErrorCodes.INVALID_ARGUMENT]: 400,
  [ErrorCodes.CONFIG_INVALID]: 400,
  [ErrorCodes.NO_SUCH_PROCESS]: 404,
  [ErrorCodes.UNKNOWN_SNAPSHOT]: 404,
  [ErrorCodes.UNKNOWN_JOB]: 404,
  [ErrorCodes.OBJECT_NOT_FOUND]: 424,
  [ErrorCodes.PARENT_MISSING]: 424,
  [ErrorCodes.PERMISSION_DENIED]: 403,
  // The target's state, not the request, is in the way (traced, exited): the client may try again later.
  [ErrorCodes.FREEZE_FAILED]: 409,
  [ErrorCodes.PROCESS_EXITED]: 409,
  [ErrorCodes.TARGET_MISMATCH]: 409,
  [ErrorCodes.FILE_UNAVAILABLE]: 424,
  [ErrorCodes.PAGE_HASH_MISMATCH]: 500,
  [ErrorCodes.OBJECT_CORRUPT]: 500,
  [ErrorCodes.STORE_UNAVAILABLE]: 503,
  [ErrorCodes.LOG_UNAVAILABLE]: 503,
};

/**
 * A request the client got wrong before it reached a route (malformed JSON, a body too large, an
 * unsupported charset or encoding): the HTTP layer's 4xx, as the client's error.
 */
function clientError(e: unknown): { status: number; message: string } | undefined {
  const status = e instanceof HttpException ? e.getStatus() : (e as { status?: unknown } | null)?.status;
  if (typeof status !== 'number' || status < 400 || status > 499) return undefined;
  return { status, message: e instanceof Error ? e.message : String(e) };
}

interface RouteLayer {
  route?: { methods: Record<string, boolean> };
  match(path: string): boolean;
}
interface Request {
  method: string;
  path: string;
  app?: { router?: { stack?: RouteLayer[] } };
}

/** The methods the app's routes answer at the request's path (express's own router), for a 405's Allow. */
function allowedMethods(req: Request): string[] {
  const methods = new Set<string>();
  for (const layer of req.app?.router?.stack ?? []) {
    if (!layer.route || !layer.match(req.path)) continue;
    for (const [m, on] of Object.entries(layer.route.methods)) if (on && m !== '_all') methods.add(m.toUpperCase());
  }
  if (methods.has('GET')) methods.add('HEAD');
  return [...methods].sort();
}

/** Maps PvError codes to HTTP statuses at the edge; the body is the error's JSON (code, message, details). */
@Catch()
export class PvErrorFilter implements ExceptionFilter {
  catch(e: unknown, host: ArgumentsHost): void {
    const res = host.switchToHttp().getResponse<{ status(n: number): { json(b: unknown): void }; setHeader(h: string, v: string): void }>();
    if (e instanceof NotFoundException) {
      // No route for this method, but one for another: 405 with the methods there are (RFC 9110 §15.5.6).
      const req = host.switchToHttp().getRequest<Request>();
      const allow = allowedMethods(req);
      if (allow.length > 0 && !allow.includes(req.method)) {
        res.setHeader('Allow', allow.join(', '));
        res.status(405).json({ code: 'PV_HTTP', message: `${req.method} is not allowed on ${req.path} (allowed: ${allow.join(', ')})`, retriable: false });
        return;
      }
    }
    const client = e instanceof PvError ? undefined : clientError(e);
    if (client) {
      // A bad request body is a bad argument like any other; the rest (401, 404 of an unknown route) stays HTTP's.
      const code = [400, 413, 415].includes(client.status) ? ErrorCodes.INVALID_ARGUMENT : 'PV_HTTP';
      // Every error body has the same fields as a PvError's: a client's own mistake is never worth a retry.
      res.status(client.status).json({ code, message: client.message, retriable: false });
    } else if (e instanceof HttpException) {
      res.status(e.getStatus()).json({ code: 'PV_HTTP', message: e.message, retriable: e.getStatus() >= 500 });
    } else if (e instanceof PvError) {
      res.status(STATUS[e.code] ?? 500).json(e.toJSON());
    } else {
      res.status(500).json({ code: 'PV_INTERNAL', message: String(e instanceof Error ? e.message : e), retriable: false });
    }
  }
}
