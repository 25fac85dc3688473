/**
 * Typed errors, thrown by the engine and translated once at the API edge (src/api/errors.ts),
 * the way Docker's errdefs map to HTTP status codes. The CLI re-creates them from status codes.
 */
export class WharfError extends Error {
  /** HTTP status code the API answers with. */
  readonly statusCode: number = 500;
  /** Stable machine-readable code. */
  readonly code: string = 'WHARF_SYSTEM';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** 404: no such image, container, layer, blob, manifest. */
export class NotFoundError extends WharfError {
  override readonly statusCode = 404;
  override readonly code = 'WHARF_NOT_FOUND';
}

/** 409: the object is in use, a name is taken. */
export class ConflictError extends WharfError {
  override readonly statusCode = 409;
  override readonly code = 'WHARF_CONFLICT';
}

/** 400: a bad reference, a bad flag value, malformed input. */
export class InvalidParameterError extends WharfError {
  override readonly statusCode = 400;
  override readonly code = 'WHARF_INVALID_PARAMETER';
}

/** 401: a registry rejected our credentials. */
export class UnauthorizedError extends WharfError {
  override readonly statusCode = 401;
  override readonly code = 'WHARF_UNAUTHORIZED';
}

/** 403 */
export class ForbiddenError extends WharfError {
  override readonly statusCode = 403;
  override readonly code = 'WHARF_FORBIDDEN';
}

/** 304: nothing to do (container already started/stopped). */
export class NotModifiedError extends WharfError {
  override readonly statusCode = 304;
  override readonly code = 'WHARF_NOT_MODIFIED';
}

/** 501 */
export class NotImplementedError extends WharfError {
  override readonly statusCode = 501;
  override readonly code = 'WHARF_NOT_IMPLEMENTED';
}

/**
 * A registry or other upstream is unreachable (the registry transport falls back to the next endpoint on it).
 * Its status is 500, as dockerd 20.10's: its dial and lookup errors are not classified (pull, search, build
 * and import URLs answer 500, e.g. `lookup registry-1.docker.io … no such host` in the reference trace).
 */
export class UnavailableError extends WharfError {
  override readonly statusCode = 500;
  override readonly code = 'WHARF_UNAVAILABLE';
}

/** 503: dockerd's errdefs.Unavailable (e.g. the swarm endpoints of a node that is not in a swarm). */
export class ServiceUnavailableError extends WharfError {
  override readonly statusCode = 503;
  override readonly code = 'WHARF_SERVICE_UNAVAILABLE';
}

/** 500: anything else (I/O errors, corrupt data). */
export class SystemError extends WharfError {}

/**
 * A `.catch` handler for a look-up whose "no such thing" answer is expected: `resolve(name).catch(notFoundAs(null))`
 * gives null for a NotFoundError and lets any other error through.
 */
export function notFoundAs<T>(value: T): (e: unknown) => T {
  return (e) => {
    if (e instanceof NotFoundError) return value;
    throw e;
  };
}

/** The HTTP status an arbitrary thrown value maps to. */
export function statusOf(err: unknown): number {
  return err instanceof WharfError ? err.statusCode : 500;
}

/** Re-creates a typed error from an HTTP status (used by the client side). */
export function errorFromStatus(status: number, message: string): WharfError {
  switch (status) {
    case 400: return new InvalidParameterError(message);
    case 401: return new UnauthorizedError(message);
    case 403: return new ForbiddenError(message);
    case 404: return new NotFoundError(message);
    case 409: return new ConflictError(message);
    case 304: return new NotModifiedError(message);
    case 501: return new NotImplementedError(message);
    case 503: return new UnavailableError(message);
    default: return new SystemError(message);
  }
}
