/**
 * Composing staged parts on Google Cloud Storage and publishing the result (for gcs-upload.ts and
 * gcs-stream-upload.ts). Parts are composed in order, at most 32 sources per compose, level by level, into one
 * staging object whose size and CRC32C must equal the local ones; only then is the final name written, by a
 * one-source compose with `ifGenerationMatch: 0` (unless overwrite), which is atomic: the release is there
 * complete or not at all.
 */
import type { Bucket, File } from '@google-cloud/storage';
import { AlreadyPublishedError, PreconditionFailedError, VerificationError, type UploadFileRequest } from './artifact-store.js';
import { crc32cCombine, crc32cToBase64 } from './crc32c.js';
import { PermanentStorageError } from './storage-retry.js';

/** GCS allows at most 32 sources per compose. */
export const MAX_COMPOSE_SOURCES = 32;

/** A staged part: its object name, byte size and CRC32C. */
export interface PartObject {
  index: number;
  name: string;
  size: number;
  crc32c: number;
}

/** What composing needs of the store (a GcsStore): its bucket, its names and its retry tuning. */
export interface ComposeStore {
  readonly bucket: Bucket;
  uri(key: string): string;
  objectName(key: string): string;
  retry<T>(what: string, fn: (attempt: number) => Promise<T>, log?: (line: string) => void): Promise<T>;
}

/** A composed object as the server reports it. */
export interface ComposedObject {
  size: number;
  crc32c: number;
  generation: string;
}

export interface PublishStagedOptions {
  parts: PartObject[];
  staging: string;
  expected: { size: number; crc32c: number; sha256: string };
  req: Pick<UploadFileRequest, 'key' | 'overwrite' | 'contentType' | 'metadata'>;
  log: (line: string) => void;
  /** What was read or packed, for the error message. */
  source: string;
  beforePublish?: () => Promise<void>;
  /** Composes run at the same time in a tree level. */
  parallelism: number;
}

/**
 * Composes staged parts, in order, into `<staging>assembled`; checks its size and CRC32C against `expected`
 * (what was read locally, `source` names it in the error); runs `beforePublish` (last checks); then writes
 * the final name by a one-source compose, with `ifGenerationMatch: 0` unless overwrite, and checks the
 * published object too.
 */
export async function publishStaged(store: ComposeStore, o: PublishStagedOptions): Promise<void> {
  const { parts, staging, expected, req, log, source, beforePublish } = o;
  const finalUri = store.uri(req.key);
  // Compose the parts (tree of ≤ 32) into one staging object and check it against the local bytes.
  const assembled = await composeTree(store, parts, `${staging}assembled`, { log, parallelism: o.parallelism });
  if (assembled.size !== expected.size || assembled.crc32c !== expected.crc32c) {
    throw new VerificationError(
      `${finalUri}: the uploaded data does not match ${source} (server: ${assembled.size} bytes, CRC32C ${crc32cToBase64(assembled.crc32c)}; ` +
        `local: ${expected.size} bytes, CRC32C ${crc32cToBase64(expected.crc32c)}); nothing was published, run the upload again`,
    );
  }
  await beforePublish?.();
  // Publish: the final name appears only now, atomically, and only if nothing is there (unless overwrite).
  const published = await compose(store, [{ name: `${staging}assembled`, generation: assembled.generation }], store.objectName(req.key), {
    contentType: req.contentType ?? 'application/octet-stream',
    metadata: { ...req.metadata, sha256: expected.sha256 },
    ifGenerationMatch: req.overwrite ? undefined : 0,
    what: `publish ${finalUri}`,
    log,
  }).catch((e: unknown) => {
    if (e instanceof PreconditionFailedError) throw new AlreadyPublishedError(finalUri);
    throw e;
  });
  if (published.size !== expected.size || published.crc32c !== expected.crc32c) {
    throw new VerificationError(`${finalUri}: the published object does not match ${source} (server CRC32C ${crc32cToBase64(published.crc32c)}, local ${crc32cToBase64(expected.crc32c)})`);
  }
}

/** Composes parts in order into `target`, 32 at a time, level by level; returns the target's size/CRC/generation. */
export async function composeTree(store: ComposeStore, parts: PartObject[], target: string, opts: { log: (line: string) => void; parallelism: number }): Promise<ComposedObject> {
  const { log } = opts;
  let level: { name: string; size: number; crc32c: number; generation?: string }[] = parts;
  for (let depth = 1; level.length > MAX_COMPOSE_SOURCES; depth++) {
    const groups: (typeof level)[] = [];
    for (let i = 0; i < level.length; i += MAX_COMPOSE_SOURCES) groups.push(level.slice(i, i + MAX_COMPOSE_SOURCES));
    const next: typeof level = new Array(groups.length);
    let cursor = 0;
    const worker = async () => {
      for (let g = cursor++; g < groups.length; g = cursor++) {
        const group = groups[g]!;
        const name = `${target}-L${depth}-${String(g + 1).padStart(5, '0')}`;
        const r = await compose(store, group, name, { what: `compose ${name}`, log });
        const expected = group.reduce((acc, p, i) => (i === 0 ? p.crc32c : crc32cCombine(acc, p.crc32c, p.size)), 0);
        const size = group.reduce((n, p) => n + p.size, 0);
        if (r.size !== size || r.crc32c !== expected) throw new VerificationError(`compose ${name}: the server reports ${r.size} bytes / CRC32C ${crc32cToBase64(r.crc32c)}, expected ${size} / ${crc32cToBase64(expected)}; nothing was published`);
        next[g] = { name, size, crc32c: expected, generation: r.generation };
      }
    };
    await Promise.all(Array.from({ length: Math.min(opts.parallelism, groups.length) }, worker));
    level = next;
  }
  return compose(store, level, target, { what: `compose ${target}`, log });
}

/** One compose request (sources in order, optionally pinned to a generation); a 412 becomes PreconditionFailedError. */
async function compose(
  store: ComposeStore,
  sources: { name: string; generation?: string }[],
  destination: string,
  opts: { contentType?: string; metadata?: Record<string, string>; ifGenerationMatch?: number; what: string; log: (line: string) => void },
): Promise<ComposedObject> {
  const file: File = store.bucket.file(destination);
  try {
    const [body] = await store.retry(
      opts.what,
      () =>
        file.request({
          method: 'POST',
          uri: '/compose',
          json: {
            destination: { contentType: opts.contentType ?? 'application/octet-stream', ...(opts.metadata ? { metadata: opts.metadata } : {}) },
            sourceObjects: sources.map((s) => ({ name: s.name, ...(s.generation ? { generation: s.generation } : {}) })),
          },
          qs: opts.ifGenerationMatch !== undefined ? { ifGenerationMatch: opts.ifGenerationMatch } : {},
        }),
      opts.log,
    );
    const meta = body as { size?: string; crc32c?: string; generation?: string };
    return { size: Number(meta.size), crc32c: Buffer.from(String(meta.crc32c), 'base64').readUInt32BE(0), generation: String(meta.generation) };
  } catch (e) {
    if (e instanceof PermanentStorageError && e.status === 412) throw new PreconditionFailedError(destination, e.message);
    throw e;
  }
}
