/**
 * Where releases are published: a Google Cloud Storage prefix (`gs://BUCKET/PREFIX`) or a directory
 * (`file:///DIR`, a LAN share or a USB disk). Both give the same guarantees — verified before publishing,
 * no clobbering, resumable — behind one interface, so the catalog, retention and the portal do not care
 * which one they write to. Keys are `/`-separated paths relative to the destination root.
 */
import type { OvaPartSink } from './ova-parts.js';
import type { FileDigests } from './upload-hashing.js';

/** Thrown when a write's precondition (generation / no-clobber) does not hold. */
export class PreconditionFailedError extends Error {
  constructor(
    readonly key: string,
    message: string,
  ) {
    super(message);
    this.name = 'PreconditionFailedError';
  }
}

/** Thrown when publishing would replace an existing object and `overwrite` is off. */
export class AlreadyPublishedError extends Error {
  constructor(
    readonly uri: string,
  ) {
    super(`${uri} already exists; a release is published once (set overwrite: true to replace it, or bump the version)`);
    this.name = 'AlreadyPublishedError';
  }
}

/** Thrown when what arrived at the destination differs from the local file. Nothing was published. */
export class VerificationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'VerificationError';
  }
}

/**
 * Thrown when the local file changed while it was being uploaded (truncated, appended to, rewritten, or
 * replaced by another file): what was read is not one consistent file, so nothing was published.
 */
export class SourceChangedError extends VerificationError {
  constructor(
    readonly path: string,
    /** What changed: `size 314572800 → 1048576 bytes`, `modified`, `replaced by another file`, `removed`. */
    readonly change: string,
  ) {
    super(`${path} changed while it was being uploaded (${change}); nothing was published; upload it again once it is complete`);
    this.name = 'SourceChangedError';
  }
}

/**
 * Who a local file is: device, inode, size and modification time, as the upload first saw it. A file that
 * still has this identity when the upload publishes is the file whose bytes were read.
 */
export interface SourceIdentity {
  dev: bigint;
  ino: bigint;
  size: number;
  mtimeNs: bigint;
}

export interface StoreEntry {
  key: string;
  size: number;
  /** GCS generation, or a stat-derived token for directories. */
  generation: string;
  updated?: string;
}

export interface UploadFileRequest {
  localPath: string;
  /**
   * The identity the caller pinned before it started (see `pinSource`). The store checks that the file it
   * opens is that one, and that it still is before it publishes. Default: the identity found at open.
   */
  source?: SourceIdentity;
  key: string;
  overwrite: boolean;
  contentType?: string;
  /** Custom metadata stored with the object (GCS) — ignored by directories. */
  metadata?: Record<string, string>;
  /** Told about bytes done (sent, written or found already verified). */
  onBytes?: (n: number) => void;
  /** Log lines (retries, resume notes). */
  log?: (line: string) => void;
}

export interface UploadFileResult {
  key: string;
  uri: string;
  digests: FileDigests;
  /** Bytes actually sent or written in this run. */
  bytesSent: number;
  /** Bytes found already verified at the destination from an earlier, interrupted run. */
  bytesReused: number;
  parts: number;
  partsReused: number;
  seconds: number;
}

/** An upload fed by a writer while it writes the file (an OVA being packed): no local path, no pinning. */
export type StreamUploadRequest = Omit<UploadFileRequest, 'localPath' | 'source'>;

/**
 * The receiving end of a streamed upload (stream-upload.ts): the writer calls body() for every final chunk,
 * then finish() (which starts the verify-and-publish and returns) or abort(). `done` settles when the object
 * is published (with the same result as uploadFile) or when nothing will be (rejected).
 */
export interface StreamUpload extends OvaPartSink {
  /** The storage URI the object is published at. */
  readonly uri: string;
  readonly done: Promise<UploadFileResult>;
}

export interface WriteSmallOptions {
  contentType?: string;
  /** Write only if the current generation is this one; '0' means "only if absent". Undefined: unconditional. */
  ifGeneration?: string;
  cacheControl?: string;
}

export interface ArtifactStore {
  readonly kind: 'gcs' | 'file';
  /** `gs://BUCKET/PREFIX` or `file:///DIR`, as given. */
  readonly root: string;
  /** The storage URI of a key (`gs://…` or `file:///…`). */
  uri(key: string): string;
  /** A plain download URL for a key (public-object URL for GCS, file URL for directories). */
  url(key: string): string;
  /** Uploads a (large) file: parallel/resumable, verified, published without clobbering. */
  uploadFile(req: UploadFileRequest): Promise<UploadFileResult>;
  /**
   * Starts an upload fed while the file is written (see {@link StreamUpload}); refuses an existing object
   * (unless overwrite) before any byte is handed over. Verified and published like uploadFile, resumable.
   */
  uploadStream(req: StreamUploadRequest): Promise<StreamUpload>;
  /** Writes a small object in one request, verified by the destination. Returns the new generation. */
  writeSmall(key: string, data: Buffer, opts?: WriteSmallOptions): Promise<string>;
  /** Reads a small object and its generation; undefined when absent. */
  readSmall(key: string): Promise<{ data: Buffer; generation: string } | undefined>;
  /** Objects whose keys start with `prefix`, sorted by key. */
  list(prefix: string): Promise<StoreEntry[]>;
  /** Deletes a key (no error when absent). */
  remove(key: string): Promise<void>;
  /** True when the key exists. */
  exists(key: string): Promise<boolean>;
  /** Makes an object readable by anyone (GCS only). */
  makePublic?(key: string): Promise<void>;
  /** A V4 signed download URL valid for `hours` (GCS only; needs credentials that can sign). */
  signedUrl?(key: string, hours: number): Promise<string>;
}
