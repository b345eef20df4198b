/**
 * One concern: downloading one Google Cloud Storage object as a stream that survives a bad connection.
 *
 * {@link openGcsDownload} reads the object's metadata once and pins its generation, so every byte comes from
 * the same object even if the name is republished meanwhile. {@link GcsDownload.read} streams it to a
 * consumer; a transient failure (reset, 5xx) — or a connection that delivers no data for `stallTimeoutMs`,
 * which ends neither with data nor with an error — is retried with backoff and resumes from the last byte
 * the consumer received. The consumer's own errors end the download at once and reach the caller unchanged.
 */
import type { Readable } from 'node:stream';
import type { GcsStore } from './gcs-upload.js';
import { printable } from './escape.js';
import { PermanentStorageError, withRetry, type RetryOptions } from './storage-retry.js';

export interface GcsDownloadOptions {
  /** Retry tuning (tests shorten the delays). */
  retry?: Pick<RetryOptions, 'attempts' | 'baseDelayMs' | 'maxDelayMs'>;
  /** A download that receives nothing for this long is dropped and resumed. Default 60 000 ms. */
  stallTimeoutMs?: number;
  /** Told about each resume (core.info in a workflow, stderr in the CLI). */
  log?: (line: string) => void;
}

/** One object at one generation, ready to be streamed. */
export interface GcsDownload {
  /** `gs://BUCKET/OBJECT`. */
  uri: string;
  /** Byte size of the pinned generation. */
  size: number;
  /** The generation every read is pinned to ('' when the server did not say). */
  generation: string;
  /**
   * Streams every byte in order; `consume` is awaited per chunk (backpressure). Resumes from the last byte
   * consumed after a transient failure or a stall. Rejects with what `consume` threw, with a
   * `RetriesExhaustedError` when the failures outlast the retries, or with a `PermanentStorageError`
   * (also when `signal` aborts).
   */
  read(consume: (chunk: Buffer) => Promise<void>, signal: AbortSignal | undefined): Promise<void>;
}

/** Finds `key` in the store's bucket and pins its generation; `undefined` when there is no such object. */
export async function openGcsDownload(store: GcsStore, key: string, options: GcsDownloadOptions = {}): Promise<GcsDownload | undefined> {
  const { retry } = options;
  const stallTimeoutMs = options.stallTimeoutMs ?? 60_000;
  const log = options.log ?? (() => undefined);
  const uri = store.uri(key);
  let meta: { size?: string | number; generation?: string | number };
  try {
    [meta] = await withRetry(() => store.bucket.file(store.objectName(key)).getMetadata(), { what: `read ${uri}`, ...retry });
  } catch (e) {
    if (e instanceof PermanentStorageError && e.status === 404) return undefined;
    throw e;
  }
  const generation = String(meta.generation ?? '');
  const size = Number(meta.size ?? 0);
  const file = store.bucket.file(store.objectName(key), generation ? { generation } : {});
  return {
    uri,
    size,
    generation,
    read: async (consume, signal) => {
      let received = 0;
      let fatal: unknown;
      try {
        await withRetry(
          async () => {
            const stream: Readable = file.createReadStream({ validation: false, ...(received > 0 ? { start: received } : {}) });
            const stop = () => stream.destroy(new Error('cancelled'));
            signal?.addEventListener('abort', stop, { once: true });
            // A connection that dies silently ends neither with data nor with an error: a stall is a transient failure.
            let stall: NodeJS.Timeout | undefined;
            const watch = () => {
              clearTimeout(stall);
              stall = setTimeout(() => stream.destroy(Object.assign(new Error(`no data for ${stallTimeoutMs / 1000} s`), { code: 'ETIMEDOUT' })), stallTimeoutMs);
            };
            watch();
            try {
              for await (const chunk of stream) {
                watch();
                try {
                  await consume(chunk as Buffer);
                } catch (e) {
                  fatal = e;
                  throw new PermanentStorageError((e as Error).message);
                }
                received += (chunk as Buffer).length;
              }
            } finally {
              clearTimeout(stall);
              signal?.removeEventListener('abort', stop);
              stream.destroy();
            }
            if (signal?.aborted) throw new PermanentStorageError('cancelled');
            if (received < size) throw Object.assign(new Error(`the connection ended after ${received} of ${size} bytes`), { code: 'ECONNRESET' });
          },
          {
            what: `download ${uri}`,
            ...retry,
            ...(signal ? { signal } : {}),
            onRetry: ({ attempt, delayMs, error }) => log(`download ${uri}: ${printable((error as Error).message ?? String(error))}; resuming from byte ${received} (retry ${attempt} in ${(delayMs / 1000).toFixed(1)} s)`),
          },
        );
      } catch (e) {
        if (fatal !== undefined) throw fatal;
        throw e;
      }
    },
  };
}
