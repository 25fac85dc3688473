/**
 * The API edge of the typed errors in lib/errors.ts: one place that turns a thrown value into docker's
 * HTTP status and `{"message": …}` body (moby's httpstatus.FromError + httputils.MakeErrorHandler).
 */
import type { ServerResponse } from 'node:http';
import { InvalidParameterError, NotFoundError, statusOf } from '../lib/errors.js';
import type { JSONMessage } from '../lib/jsonmessage.js';

/** The message a client sees for an error. */
export function messageOf(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

/** The HTTP status of a thrown value; anything that is not a WharfError is a 500. */
export function httpStatusOf(err: unknown): number {
  const s = statusOf(err);
  return Number.isInteger(s) && s >= 100 && s <= 599 ? s : 500;
}

/** Docker's error body, with the trailing newline Go's json.Encoder writes. */
export function errorBody(err: unknown): string {
  return JSON.stringify({ message: messageOf(err) }) + '\n';
}

/** Writes an error response (before any body was sent). */
export function sendError(res: ServerResponse, err: unknown): void {
  const status = httpStatusOf(err);
  if (res.headersSent) {
    // Too late for a status: the best we can do is end the body.
    res.end();
    return;
  }
  if (status === 304) {
    res.writeHead(304);
    res.end();
    return;
  }
  const body = errorBody(err);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

/** The JSON message written into a stream when an error happens after status 200 went out. */
export function streamErrorMessage(err: unknown): JSONMessage {
  const message = messageOf(err);
  return { errorDetail: { message }, error: message };
}

/** 404 for an unknown route, as moby's mux answers. */
export function pageNotFound(): NotFoundError {
  return new NotFoundError('page not found');
}

/** The version-middleware errors (400). */
export function clientTooNew(version: string, max: string): InvalidParameterError {
  return new InvalidParameterError(`client version ${version} is too new. Maximum supported API version is ${max}`);
}

export function clientTooOld(version: string, min: string): InvalidParameterError {
  return new InvalidParameterError(
    `client version ${version} is too old. Minimum supported API version is ${min}, please upgrade your client to a newer version`,
  );
}
