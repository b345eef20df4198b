/**
 * Retries for storage calls: transient failures (HTTP 408/429/5xx, connection resets and timeouts) are
 * retried with exponential backoff and jitter; permanent ones (400, 401, 403, 404, 412 …) fail at once with
 * what to check.
 */

/** A failure that retrying will not fix, with the fix in the message. */
export class PermanentStorageError extends Error {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'PermanentStorageError';
  }
}

/** Transient failures that outlasted every retry. Running the same upload again resumes it. */
export class RetriesExhaustedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RetriesExhaustedError';
  }
}

const TRANSIENT_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', 'ENOTFOUND', 'ECONNABORTED', 'UND_ERR_SOCKET', 'ERR_STREAM_PREMATURE_CLOSE']);

/** The HTTP status of a storage error (the library puts it in `code`), if any. */
export function httpStatusOf(error: unknown): number | undefined {
  const e = error as { code?: unknown; status?: unknown; response?: { status?: unknown } };
  for (const v of [e?.code, e?.status, e?.response?.status]) {
    if (typeof v === 'number' && v >= 100 && v < 600) return v;
  }
  return undefined;
}

/** True for failures worth retrying. */
export function isTransient(error: unknown): boolean {
  const status = httpStatusOf(error);
  if (status !== undefined) return status === 408 || status === 429 || status >= 500;
  const e = error as { code?: unknown; message?: unknown };
  if (typeof e?.code === 'string' && TRANSIENT_CODES.has(e.code)) return true;
  const msg = String(e?.message ?? error);
  return /ECONNRESET|socket hang up|ETIMEDOUT|EPIPE|network|premature close|other side closed|aborted/i.test(msg);
}

/** Codes of a request that never got an answer: nothing listens, no route, no such host. */
const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN']);

/**
 * For a request that never reached a server (refused, no route, unknown host): `cannot reach <url> (<code>)`,
 * with the URL's origin taken from the error; undefined for any other error.
 */
export function unreachableText(error: unknown): string | undefined {
  const e = error as { code?: unknown; errno?: unknown; message?: unknown; config?: { url?: unknown }; cause?: { code?: unknown } };
  const code = [e?.code, e?.errno, e?.cause?.code].find((c): c is string => typeof c === 'string' && UNREACHABLE_CODES.has(c));
  if (!code) return undefined;
  const msg = String(e?.message ?? '');
  const raw = typeof e?.config?.url === 'string' ? e.config.url : (/\b(https?:\/\/[^\s?'"]+)/.exec(msg)?.[1] ?? '');
  let where = raw;
  try {
    where = raw ? new URL(raw).origin : '';
  } catch {
    // keep the raw text
  }
  return `cannot reach ${where || 'the storage endpoint'} (${code})`;
}

/** A one-line explanation of a permanent storage error with what to check. */
export function explainStorageError(error: unknown, what: string): string {
  const status = httpStatusOf(error);
  const msg = (error as Error)?.message ?? String(error);
  const unreachable = status === undefined ? unreachableText(error) : undefined;
  if (unreachable) return `${what}: ${unreachable}; check the endpoint or destination and the network`;
  switch (status) {
    case 401:
      return `${what}: not authenticated (HTTP 401: ${msg}); check that Application Default Credentials are set up (google-github-actions/auth before this step, or 'gcloud auth application-default login' locally)`;
    case 403:
      return `${what}: permission denied (HTTP 403: ${msg}); grant the workload identity roles/storage.objectAdmin on the bucket (objectCreator is not enough: uploads compose, read and delete staging objects)`;
    case 404:
      return `${what}: not found (HTTP 404: ${msg}); check the bucket name in 'destination' and that the bucket exists in this project`;
    case 412:
      return `${what}: a generation precondition failed (HTTP 412: ${msg})`;
    default:
      return `${what}: ${status ? `HTTP ${status}: ` : ''}${msg}`;
  }
}

export interface RetryOptions {
  /** What is being done, for messages ("upload part 3 of hedgehog-lab-…ova"). */
  what: string;
  /** Attempts in total (first try included). Default 6. */
  attempts?: number;
  /** First delay in ms, doubled each time, with ±50 % jitter. Default 500. */
  baseDelayMs?: number;
  /** Longest delay in ms. Default 30 000. */
  maxDelayMs?: number;
  /** Told about each retry (for log lines). */
  onRetry?: (info: { attempt: number; delayMs: number; error: unknown }) => void;
  /** Extra transient test (e.g. a checksum mismatch of one part is worth re-sending). */
  alsoTransient?: (error: unknown) => boolean;
  signal?: AbortSignal;
}

/** Runs `fn` until it succeeds, a permanent error occurs, or the attempts run out. */
export async function withRetry<T>(fn: (attempt: number) => Promise<T>, opts: RetryOptions): Promise<T> {
  const attempts = opts.attempts ?? 6;
  const base = opts.baseDelayMs ?? 500;
  const max = opts.maxDelayMs ?? 30_000;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (error) {
      if (error instanceof PermanentStorageError) throw error;
      const transient = isTransient(error) || (opts.alsoTransient?.(error) ?? false);
      if (!transient) throw new PermanentStorageError(explainStorageError(error, opts.what), httpStatusOf(error));
      if (attempt >= attempts || opts.signal?.aborted) {
        throw new RetriesExhaustedError(`${explainStorageError(error, opts.what)} — still failing after ${attempt} attempts; run the same upload again to resume`);
      }
      const delayMs = Math.min(max, base * 2 ** (attempt - 1)) * (0.5 + Math.random());
      opts.onRetry?.({ attempt, delayMs, error });
      await new Promise((res) => setTimeout(res, delayMs));
    }
  }
}
