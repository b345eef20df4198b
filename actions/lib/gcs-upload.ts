/**
 * Publishing to Google Cloud Storage: parallel parts, compose, verify, then a no-clobber publish.
 *
 * One sequential read pass feeds SHA-256 and CRC32C and cuts the file into parts (`chunk-size-mib`).
 * Up to `parallelism` parts are uploaded at once, each in one request that carries its CRC32C, so GCS
 * itself rejects a part damaged in transit. Parts go to a staging prefix
 * (`<prefix>/.labforge-staging/<key>/<size>-<part size>/part-NNNNNN`), are composed (≤ 32 per compose,
 * in a tree when there are more) into one staging object whose size and CRC32C must equal the local
 * ones, and only then is the final name written — by a one-source compose with `ifGenerationMatch: 0`
 * (unless overwrite), which is atomic: the release is there complete or not at all (gcs-compose.ts).
 *
 * Resume: a part that is already in staging with the same size and CRC32C is not sent again, so running
 * the same upload after a kill or a dropped connection re-sends only what is missing. Staging objects are
 * removed after success and after a failure that a rerun would not fix; after transient failures (network,
 * 5xx) they are kept for the rerun. Memory stays flat: at most `parallelism + 1` part buffers exist.
 */
import { Storage, type Bucket } from '@google-cloud/storage';
import { createHash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import {
  AlreadyPublishedError,
  PreconditionFailedError,
  type ArtifactStore,
  type SourceIdentity,
  type StoreEntry,
  type StreamUpload,
  type StreamUploadRequest,
  type UploadFileRequest,
  type UploadFileResult,
  type WriteSmallOptions,
} from './artifact-store.js';
import { composeTree, publishStaged, type ComposedObject, type PartObject, type PublishStagedOptions } from './gcs-compose.js';
import { openGcsStreamUpload } from './gcs-stream-upload.js';
import { crc32cToBase64, crc32cUpdate } from './crc32c.js';
import { PermanentStorageError, RetriesExhaustedError, httpStatusOf, withRetry, type RetryOptions } from './storage-retry.js';
import { UploadHasher, assertSourceUnchanged, openPinnedSource, sourceShrank } from './upload-hashing.js';

export { MAX_COMPOSE_SOURCES, type PartObject } from './gcs-compose.js';

/** The staging folder under the destination prefix. */
export const STAGING_DIR = '.labforge-staging/';

export interface GcsLocation {
  bucket: string;
  /** Object-name prefix, '' or ending in '/'. */
  prefix: string;
}

/**
 * What is wrong with the prefix of a `gs://BUCKET/PREFIX` URI, or undefined when it is fine. A trailing `/`
 * is allowed; an empty segment (`//`), a `.` or `..` segment or a control character is not: object names
 * are taken literally, so such a prefix would publish where no one looks (or where the catalog is not).
 */
export function gcsPrefixProblem(uri: string): string | undefined {
  const m = /^gs:\/\/[^/]*(?:\/(.*))?$/s.exec(uri);
  const raw = m?.[1];
  if (raw === undefined || raw === '') return undefined;
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f]/.test(raw)) return 'has a control character in its prefix';
  const segments = raw.replace(/\/$/, '').split('/');
  if (segments.some((seg) => seg === '')) return "has an empty segment ('//') in its prefix";
  if (segments.some((seg) => seg === '.' || seg === '..')) return "has a '.' or '..' segment in its prefix";
  return undefined;
}

/** Splits `gs://BUCKET/PREFIX` into bucket and a normalized prefix; undefined when it is not a valid gs:// URI. */
export function parseGcsUri(uri: string): GcsLocation | undefined {
  const m = /^gs:\/\/([a-z0-9][a-z0-9._-]{1,220}[a-z0-9])(?:\/(.*))?$/s.exec(uri.trim());
  if (!m || gcsPrefixProblem(uri.trim()) !== undefined) return undefined;
  const prefix = (m[2] ?? '').replace(/\/+$/, '');
  return { bucket: m[1]!, prefix: prefix ? `${prefix}/` : '' };
}

export interface StorageClientOptions {
  /** A GCS JSON-API endpoint (an emulator); otherwise STORAGE_EMULATOR_HOST, otherwise Google. */
  endpoint?: string;
  projectId?: string;
}

/**
 * A Storage client on Application Default Credentials. Retries are labforge's own (withRetry), so the
 * library's are off. A custom endpoint (emulator) is called without credentials, as the library does.
 */
export function createStorageClient(opts: StorageClientOptions = {}): Storage {
  const endpoint = opts.endpoint || process.env.STORAGE_EMULATOR_HOST || undefined;
  return new Storage({
    ...(endpoint ? { apiEndpoint: endpoint.replace(/\/+$/, '') } : {}),
    ...(opts.projectId ? { projectId: opts.projectId } : {}),
    retryOptions: { autoRetry: false, maxRetries: 0 },
  });
}

export interface GcsStoreOptions extends StorageClientOptions {
  location: GcsLocation;
  /** Parts uploaded at the same time. */
  parallelism: number;
  /** Part size in bytes (a multiple of 256 KiB). */
  partSize: number;
  /** Retry tuning (tests shorten the delays). */
  retry?: Pick<RetryOptions, 'attempts' | 'baseDelayMs' | 'maxDelayMs'>;
  /** An existing client (tests, benchmarks). */
  storage?: Storage;
}

/** A GCS prefix as an {@link ArtifactStore}. */
export class GcsStore implements ArtifactStore {
  readonly kind = 'gcs' as const;
  readonly root: string;
  readonly storage: Storage;
  readonly bucket: Bucket;
  private readonly location: GcsLocation;

  constructor(private readonly opts: GcsStoreOptions) {
    this.location = opts.location;
    this.root = `gs://${opts.location.bucket}/${opts.location.prefix}`.replace(/\/$/, '');
    this.storage = opts.storage ?? createStorageClient(opts);
    this.bucket = this.storage.bucket(opts.location.bucket);
  }

  objectName(key: string): string {
    return `${this.location.prefix}${key}`;
  }

  uri(key: string): string {
    return `gs://${this.location.bucket}/${this.objectName(key)}`;
  }

  url(key: string): string {
    // https://storage.googleapis.com/BUCKET/NAME (or the emulator's endpoint), keeping the slashes readable.
    const base = this.storage.apiEndpoint.replace(/\/+$/, '');
    const name = this.objectName(key).split('/').map(encodeURIComponent).join('/');
    return `${base}/${this.location.bucket}/${name}`;
  }

  /** withRetry with this store's tuning, logging each retry. */
  retry<T>(what: string, fn: (attempt: number) => Promise<T>, log?: (line: string) => void, extra: Partial<RetryOptions> = {}): Promise<T> {
    return withRetry(fn, {
      what,
      ...this.opts.retry,
      ...extra,
      onRetry: ({ attempt, delayMs, error }) => log?.(`${what}: ${(error as Error).message ?? String(error)}; retry ${attempt} in ${(delayMs / 1000).toFixed(1)} s`),
    });
  }

  async exists(key: string): Promise<boolean> {
    const [ok] = await this.retry(`check ${this.uri(key)}`, () => this.bucket.file(this.objectName(key)).exists());
    return ok;
  }

  async readSmall(key: string): Promise<{ data: Buffer; generation: string } | undefined> {
    const file = this.bucket.file(this.objectName(key));
    try {
      return await this.retry(`read ${this.uri(key)}`, async () => {
        const [meta] = await file.getMetadata();
        const generation = String(meta.generation);
        const [data] = await this.bucket.file(this.objectName(key), { generation }).download({ validation: 'crc32c' });
        return { data, generation };
      });
    } catch (e) {
      if (e instanceof PermanentStorageError && e.status === 404) return undefined;
      throw e;
    }
  }

  async writeSmall(key: string, data: Buffer, opts: WriteSmallOptions = {}): Promise<string> {
    const file = this.bucket.file(this.objectName(key));
    const crc = crc32cToBase64(crc32cUpdate(0, data));
    const md5 = createHash('md5').update(data).digest('base64');
    try {
      await this.retry(`write ${this.uri(key)}`, () =>
        file.save(data, {
          resumable: false,
          validation: false,
          gzip: false,
          contentType: opts.contentType ?? 'application/octet-stream',
          metadata: { crc32c: crc, md5Hash: md5, ...(opts.cacheControl ? { cacheControl: opts.cacheControl } : {}) },
          ...(opts.ifGeneration !== undefined ? { preconditionOpts: { ifGenerationMatch: Number(opts.ifGeneration) } } : {}),
        }),
      );
    } catch (e) {
      if (e instanceof PermanentStorageError && e.status === 412) {
        if (opts.ifGeneration === '0') throw new AlreadyPublishedError(this.uri(key));
        throw new PreconditionFailedError(key, `${this.uri(key)} changed since it was read (generation is no longer ${opts.ifGeneration})`);
      }
      throw e;
    }
    return String(file.metadata.generation ?? '');
  }

  async list(prefix: string): Promise<StoreEntry[]> {
    const out: StoreEntry[] = [];
    let pageToken: string | undefined;
    do {
      const [files, next] = await this.retry(`list ${this.uri(prefix)}`, () =>
        this.bucket.getFiles({ prefix: this.objectName(prefix), autoPaginate: false, maxResults: 1000, ...(pageToken ? { pageToken } : {}) }),
      );
      for (const f of files) {
        out.push({
          key: f.name.slice(this.location.prefix.length),
          size: Number(f.metadata.size ?? 0),
          generation: String(f.metadata.generation ?? ''),
          ...(f.metadata.updated ? { updated: String(f.metadata.updated) } : {}),
        });
      }
      pageToken = (next as { pageToken?: string } | null)?.pageToken;
    } while (pageToken);
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async remove(key: string): Promise<void> {
    await this.retry(`delete ${this.uri(key)}`, () => this.bucket.file(this.objectName(key)).delete({ ignoreNotFound: true }));
  }

  async makePublic(key: string): Promise<void> {
    try {
      await this.retry(`make ${this.uri(key)} public`, () => this.bucket.file(this.objectName(key)).makePublic());
    } catch (e) {
      if (/uniform bucket-level access/i.test((e as Error).message)) {
        throw new PermanentStorageError(
          `make-public: the bucket ${this.location.bucket} uses uniform bucket-level access, so objects cannot be made public one by one; ` +
            `grant allUsers roles/storage.objectViewer on the bucket (gcloud storage buckets add-iam-policy-binding gs://${this.location.bucket} --member=allUsers --role=roles/storage.objectViewer) and drop make-public, or use signed-url-hours`,
        );
      }
      throw e;
    }
  }

  async signedUrl(key: string, hours: number): Promise<string> {
    try {
      const [url] = await this.bucket.file(this.objectName(key)).getSignedUrl({ version: 'v4', action: 'read', expires: Date.now() + hours * 3600_000 });
      return url;
    } catch (e) {
      throw new PermanentStorageError(
        `signed-url-hours: cannot sign a URL for ${this.uri(key)} (${(e as Error).message}); signing needs a service account identity: ` +
          `with Workload Identity Federation set service_account in google-github-actions/auth and grant it roles/iam.serviceAccountTokenCreator on itself`,
      );
    }
  }

  /** Parallel, resumable, verified, no-clobber upload of a file while it is written (gcs-stream-upload.ts). */
  uploadStream(req: StreamUploadRequest): Promise<StreamUpload> {
    return openGcsStreamUpload(this, req, this.stagingRoot(req.key), { partSize: this.opts.partSize, parallelism: this.opts.parallelism });
  }

  /** The staging folder of one key: every part of every attempt to publish it. */
  stagingRoot(key: string): string {
    return `${this.location.prefix}${STAGING_DIR}${key}/`;
  }

  /** Parallel, resumable, verified, no-clobber upload of one file. */
  async uploadFile(req: UploadFileRequest): Promise<UploadFileResult> {
    const started = performance.now();
    const log = req.log ?? (() => {});
    const finalUri = this.uri(req.key);
    // The source first: a file that is no longer the one the caller pinned is refused before any request.
    const { fh, identity } = await openPinnedSource(req.localPath, req.source);
    try {
      return await this.uploadOpenFile(req, fh, identity, started, log, finalUri);
    } finally {
      await fh.close();
    }
  }

  private async uploadOpenFile(req: UploadFileRequest, fh: FileHandle, identity: SourceIdentity, started: number, log: (line: string) => void, finalUri: string): Promise<UploadFileResult> {
    if (!req.overwrite && (await this.exists(req.key))) throw new AlreadyPublishedError(finalUri);
    const size = identity.size;
    const partSize = this.opts.partSize;
    const partCount = Math.max(1, Math.ceil(size / partSize));
    const stagingRoot = this.stagingRoot(req.key);
    const staging = `${stagingRoot}${size}-${partSize}/`;
    const partName = (i: number) => `${staging}part-${String(i + 1).padStart(6, '0')}`;

    // What an earlier, interrupted run left: reusable parts of this layout; anything else is stale.
    const existing = new Map<string, StoreEntry & { crc32c?: string }>();
    const [leftovers] = await this.retry(`list ${stagingRoot}`, () => this.bucket.getFiles({ prefix: stagingRoot }));
    for (const f of leftovers) {
      if (f.name.startsWith(`${staging}part-`)) {
        existing.set(f.name, { key: f.name, size: Number(f.metadata.size), generation: String(f.metadata.generation), crc32c: String(f.metadata.crc32c) });
      } else {
        await this.retry(`delete stale ${f.name}`, () => f.delete({ ignoreNotFound: true }), log);
      }
    }
    if (existing.size > 0) log(`${finalUri}: resuming, ${existing.size} part(s) of an earlier run are in staging`);

    let keepStaging = false;
    try {
      const hasher = new UploadHasher();
      const parts: PartObject[] = [];
      let bytesSent = 0;
      let bytesReused = 0;
      let partsReused = 0;
      const inFlight = new Set<Promise<void>>();
      let firstError: unknown;
      const free: Buffer[] = [];
      for (let i = 0; i < partCount; i++) {
        while (inFlight.size >= this.opts.parallelism && firstError === undefined) await Promise.race(inFlight);
        if (firstError !== undefined) break;
        const length = Math.min(partSize, size - i * partSize);
        const buf = (free.pop() ?? Buffer.allocUnsafe(partSize)).subarray(0, length);
        let got = 0;
        while (got < length) {
          const { bytesRead } = await fh.read(buf, got, length - got, i * partSize + got);
          if (bytesRead === 0) break;
          got += bytesRead;
        }
        if (got < length) {
          // The file is shorter than when it was pinned: stop reading, let the parts in flight land, then fail.
          firstError ??= await sourceShrank(req.localPath, fh, identity);
          break;
        }
        const crc = hasher.update(buf);
        const part: PartObject = { index: i, name: partName(i), size: length, crc32c: crc };
        parts.push(part);
        const have = existing.get(part.name);
        if (have && have.size === length && have.crc32c === crc32cToBase64(crc)) {
          partsReused++;
          bytesReused += length;
          req.onBytes?.(length);
          free.push(Buffer.from(buf.buffer, buf.byteOffset, partSize));
          continue;
        }
        const job = this.uploadPart(part, buf, log)
          .then(() => {
            bytesSent += length;
            req.onBytes?.(length);
          })
          .catch((e: unknown) => {
            firstError ??= e;
          })
          .finally(() => {
            inFlight.delete(job);
            free.push(Buffer.from(buf.buffer, buf.byteOffset, partSize));
          });
        inFlight.add(job);
      }
      await Promise.all(inFlight);
      if (firstError !== undefined) throw firstError;
      const digests = hasher.digest();
      await assertSourceUnchanged(req.localPath, fh, identity, { hashed: digests.size, sent: bytesSent + bytesReused });

      await this.publishStaged({
        parts,
        staging,
        expected: { size, crc32c: digests.crc32c, sha256: digests.sha256 },
        req,
        log,
        source: req.localPath,
        // Last look before the name appears: the file is still the one that was read, all of it, once.
        beforePublish: () => assertSourceUnchanged(req.localPath, fh, identity, { hashed: digests.size, sent: bytesSent + bytesReused }),
      });
      return {
        key: req.key,
        uri: finalUri,
        digests,
        bytesSent,
        bytesReused,
        parts: partCount,
        partsReused,
        seconds: (performance.now() - started) / 1000,
      };
    } catch (e) {
      // A rerun resumes after transient trouble; anything else leaves no staging behind.
      keepStaging = e instanceof RetriesExhaustedError;
      if (keepStaging) log(`${finalUri}: kept the verified parts under gs://${this.location.bucket}/${staging} so that a rerun resumes`);
      throw e;
    } finally {
      if (!keepStaging) await this.removePrefix(stagingRoot, log);
    }
  }

  /** Composes the staged parts and publishes them under `req.key`, verified (gcs-compose.ts); also used by gcs-stream-upload.ts. */
  publishStaged(o: Omit<PublishStagedOptions, 'parallelism'>): Promise<void> {
    return publishStaged(this, { ...o, parallelism: this.opts.parallelism });
  }

  /** Uploads one staged part in one request carrying its CRC32C (GCS rejects damaged bytes); internal, shared with gcs-stream-upload.ts. */
  async uploadPart(part: PartObject, data: Buffer, log: (line: string) => void): Promise<void> {
    const file = this.bucket.file(part.name);
    const crc = crc32cToBase64(part.crc32c);
    await this.retry(
      `upload ${part.name}`,
      async () => {
        try {
          await file.save(data, {
            resumable: false,
            validation: false,
            gzip: false,
            contentType: 'application/octet-stream',
            metadata: { crc32c: crc },
            preconditionOpts: { ifGenerationMatch: 0 },
          });
        } catch (e) {
          if (httpStatusOf(e) !== 412) throw e;
          // An earlier attempt landed after all: keep it if it is this data, else replace it.
          const [meta] = await file.getMetadata();
          if (Number(meta.size) === part.size && meta.crc32c === crc) return;
          await file.delete({ ifGenerationMatch: Number(meta.generation) });
          throw Object.assign(new Error(`a different ${part.name} was in staging; replaced it`), { code: 503 });
        }
      },
      log,
      // GCS rejects a part whose bytes do not match the CRC32C we sent: re-send it from memory.
      { alsoTransient: (e) => httpStatusOf(e) === 400 && /CRC32C|MD5|checksum/i.test((e as Error).message) },
    );
  }

  /** Composes parts in order into `target`, 32 at a time, level by level (gcs-compose.ts). */
  composeTree(parts: PartObject[], target: string, log: (line: string) => void): Promise<ComposedObject> {
    return composeTree(this, parts, target, { log, parallelism: this.opts.parallelism });
  }

  /** Deletes every object under `prefix` (staging); a failure is logged, not thrown. */
  async removePrefix(prefix: string, log: (line: string) => void): Promise<void> {
    try {
      const [files] = await this.retry(`list ${prefix}`, () => this.bucket.getFiles({ prefix }), log);
      let cursor = 0;
      const worker = async () => {
        for (let i = cursor++; i < files.length; i = cursor++) await this.retry(`delete ${files[i]!.name}`, () => files[i]!.delete({ ignoreNotFound: true }), log);
      };
      await Promise.all(Array.from({ length: Math.min(8, files.length) }, worker));
    } catch (e) {
      log(`could not remove staging objects under gs://${this.location.bucket}/${prefix}: ${(e as Error).message} (a lifecycle rule on ${STAGING_DIR} cleans them up)`);
    }
  }
}

