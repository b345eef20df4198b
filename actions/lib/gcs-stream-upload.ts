/**
 * The streamed upload to GCS (stream-upload.ts): body parts are uploaded while the OVA is being packed.
 *
 * Parts are cut every `partSize` bytes counted from the head's end (the body's first byte) and uploaded as
 * soon as they are full, up to `parallelism` at once, each in one request carrying its CRC32C (GCS rejects
 * damaged bytes). body() waits while the pool is full, which slows the writer down: at most
 * `parallelism + 1` part buffers exist, whatever the image size. At finish the head and the tail (the bytes
 * known only at the end) are uploaded last; [head, body parts…, tail] are composed (a tree when more than
 * 32), the composed object's size and CRC32C must equal the ones combined here from the handed-over bytes
 * (crc32cCombine), the SHA-256 the writer computed is recorded, and the release name is written by the same
 * one-source no-clobber compose as an upload by path (GcsStore.publishStaged).
 *
 * Staging key and resume: `<prefix>/.labforge-staging/<key>/stream-<part size>-<body start>/part-NNNNNN`,
 * with `head` and `tail` beside the parts. Everything in it is known before the OVA's size and SHA-256 are:
 * the release name and part size up front, the body start (the head's length) at the first body() call. A
 * rerun that packs the same image produces the same bytes (the writer is deterministic), so a staged part
 * with the same size and CRC32C as the part now in memory is not sent again. A different image can not
 * wrongly reuse a part: a part is reused only when the staged object's CRC32C equals the CRC32C of the bytes
 * this run handed over for that same range (CRC32C detects every change of up to 32 consecutive bits and
 * misses a random change with probability 2^-32); a different head length puts the parts under another
 * staging key (and the old ones are deleted as stale); and the composed object is checked against the CRC32C
 * and size of this run's bytes before the name appears, so a staged part with other bytes would fail that
 * check and nothing would be published.
 *
 * Cleanup as for an upload by path: staging is removed after success and after failures a rerun would not
 * fix (an abort from the packing, a failed check); after transient trouble (retries exhausted) it is kept.
 */
import { AlreadyPublishedError, type StreamUploadRequest, type UploadFileResult } from './artifact-store.js';
import { crc32cCombine, crc32cToBase64, crc32cUpdate } from './crc32c.js';
import type { GcsStore, PartObject } from './gcs-upload.js';
import type { OvaFinalParts } from './ova-parts.js';
import { RetriesExhaustedError } from './storage-retry.js';
import { StreamUploadBase } from './stream-upload.js';
import type { FileDigests } from './upload-hashing.js';

interface Staged {
  size: number;
  crc32c: string;
}

/** Opens a streamed upload: refuses an existing release (unless overwrite) and lists what an earlier run staged. */
export async function openGcsStreamUpload(store: GcsStore, req: StreamUploadRequest, stagingRoot: string, opts: { partSize: number; parallelism: number }): Promise<GcsStreamUpload> {
  const uri = store.uri(req.key);
  if (!req.overwrite && (await store.exists(req.key))) throw new AlreadyPublishedError(uri);
  const staged = new Map<string, Staged>();
  const [files] = await store.retry(`list ${stagingRoot}`, () => store.bucket.getFiles({ prefix: stagingRoot }), req.log);
  for (const f of files) staged.set(f.name, { size: Number(f.metadata.size), crc32c: String(f.metadata.crc32c) });
  return new GcsStreamUpload(store, req, uri, stagingRoot, staged, opts);
}

export class GcsStreamUpload extends StreamUploadBase {
  private staging = '';
  private readonly parts: PartObject[] = [];
  private readonly inFlight = new Set<Promise<void>>();
  private readonly free: Buffer[] = [];
  private current: Buffer | undefined;
  private fill = 0;
  private crc = 0;
  private firstError: unknown;
  private bytesSent = 0;
  private bytesReused = 0;
  private partsReused = 0;

  constructor(
    private readonly store: GcsStore,
    req: StreamUploadRequest,
    uri: string,
    private readonly stagingRoot: string,
    private readonly staged: Map<string, Staged>,
    private readonly opts: { partSize: number; parallelism: number },
  ) {
    super(uri, req);
  }

  protected async start(bodyStart: number): Promise<void> {
    this.staging = `${this.stagingRoot}stream-${this.opts.partSize}-${bodyStart}/`;
    // What an earlier run left under another layout (or an upload by path) is of no use: delete it.
    for (const name of [...this.staged.keys()]) {
      if (name.startsWith(this.staging)) continue;
      this.staged.delete(name);
      await this.store.retry(`delete stale ${name}`, () => this.store.bucket.file(name).delete({ ignoreNotFound: true }), this.log);
    }
    if (this.staged.size > 0) this.log(`${this.uri}: resuming, ${this.staged.size} object(s) of an earlier run are in staging`);
  }

  protected async take(_offset: number, bytes: Buffer): Promise<void> {
    for (let at = 0; at < bytes.length; ) {
      if (this.firstError !== undefined) throw this.firstError;
      this.current ??= this.free.pop() ?? Buffer.allocUnsafe(this.opts.partSize);
      const n = bytes.copy(this.current, this.fill, at, Math.min(bytes.length, at + this.opts.partSize - this.fill));
      this.fill += n;
      at += n;
      if (this.fill === this.opts.partSize) await this.dispatch();
    }
  }

  /** Sends the current part (or finds it staged already); waits for a free slot first. */
  private async dispatch(): Promise<void> {
    const whole = this.current!;
    const data = whole.subarray(0, this.fill);
    this.current = undefined;
    this.fill = 0;
    const partCrc = crc32cUpdate(0, data);
    this.crc = this.parts.length === 0 ? partCrc : crc32cCombine(this.crc, partCrc, data.length);
    const part: PartObject = { index: this.parts.length, name: `${this.staging}part-${String(this.parts.length + 1).padStart(6, '0')}`, size: data.length, crc32c: partCrc };
    this.parts.push(part);
    if (this.reusable(part)) {
      this.free.push(whole);
      return;
    }
    // At most `parallelism` parts in flight: with the one being filled, parallelism + 1 buffers in all.
    while (this.inFlight.size >= this.opts.parallelism && this.firstError === undefined) await Promise.race(this.inFlight);
    if (this.firstError !== undefined || this.ended) {
      this.free.push(whole);
      throw this.firstError ?? new Error(`${this.uri}: the upload was aborted`);
    }
    const job = this.send(part, data).finally(() => {
      this.inFlight.delete(job);
      this.free.push(whole);
    });
    this.inFlight.add(job);
  }

  private reusable(part: PartObject): boolean {
    const have = this.staged.get(part.name);
    if (!have || have.size !== part.size || have.crc32c !== crc32cToBase64(part.crc32c)) return false;
    this.partsReused++;
    this.bytesReused += part.size;
    this.req.onBytes?.(part.size);
    return true;
  }

  private send(part: PartObject, data: Buffer): Promise<void> {
    return this.store.uploadPart(part, data, this.log).then(
      () => {
        this.bytesSent += part.size;
        this.req.onBytes?.(part.size);
      },
      (e: unknown) => {
        this.firstError ??= e;
      },
    );
  }

  protected bodyCrc32c(): number {
    return this.crc;
  }

  protected async flush(): Promise<void> {
    if (this.fill > 0) await this.dispatch();
    await Promise.all(this.inFlight);
    this.free.length = 0;
    if (this.firstError !== undefined) throw this.firstError;
  }

  protected async complete(final: OvaFinalParts, expected: FileDigests, lastCheck: () => void): Promise<Omit<UploadFileResult, 'digests' | 'seconds'>> {
    // The head and the tail, last: their bytes exist only now.
    const edge = (name: 'head' | 'tail', data: Buffer): PartObject => ({ index: -1, name: `${this.staging}${name}`, size: data.length, crc32c: crc32cUpdate(0, data) });
    const head = edge('head', final.head);
    const tail = edge('tail', final.tail);
    const sendEdge = async (part: PartObject, data: Buffer) => {
      if (part.size > 0 && !this.reusable(part)) await this.send(part, data);
    };
    await Promise.all([sendEdge(head, final.head), sendEdge(tail, final.tail)]);
    if (this.firstError !== undefined) throw this.firstError;
    const sources = [head, ...this.parts, tail].filter((p) => p.size > 0);
    await this.store.publishStaged({ parts: sources, staging: this.staging, expected, req: this.req, log: this.log, source: 'the packed OVA', beforePublish: async () => lastCheck() });
    await this.store.removePrefix(this.stagingRoot, this.log);
    return { key: this.req.key, uri: this.uri, bytesSent: this.bytesSent, bytesReused: this.bytesReused, parts: sources.length, partsReused: this.partsReused };
  }

  protected async discard(reason: unknown): Promise<void> {
    await Promise.allSettled(this.inFlight);
    this.free.length = 0;
    this.current = undefined;
    // A rerun resumes after transient trouble; anything else (an abort, a failed check) leaves no staging behind.
    if (this.firstError instanceof RetriesExhaustedError || reason instanceof RetriesExhaustedError) {
      this.log(`${this.uri}: kept the verified parts under gs://${this.store.bucket.name}/${this.staging || this.stagingRoot} so that a rerun resumes`);
      return;
    }
    await this.store.removePrefix(this.stagingRoot, this.log);
  }
}
