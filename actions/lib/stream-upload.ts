/**
 * Publishing a file while it is being written (issue 16): the OVA writer hands over every final byte of the
 * archive's body in order (ova-parts.ts), then the head and tail that are only known at the end. The store
 * uploads (GCS, gcs-stream-upload.ts) or writes (a directory, file-stream-upload.ts) the body as it comes,
 * and at finish() puts the head and tail in place, verifies the whole object (size and CRC32C, computed here
 * from the bytes handed over) and publishes it without clobbering, exactly as an upload of a file by path.
 *
 * This module is the protocol both stores share: the order of calls, offsets that must be contiguous from
 * the head's end, the sizes that must add up, and the life cycle:
 *
 *   open ─body()*─▶ finish() ─(background: head, tail, compose/verify, publish)─▶ done resolves
 *     └──────────── abort() / a failed part / a failed check ──────────────────▶ done rejects, nothing published
 *
 * finish() returns as soon as the publish has started: the local OVA is complete and correct whatever the
 * destination does, so a publish failure must not fail (and remove) the packed file — it rejects `done`,
 * which the caller awaits. An abort() that arrives while the publish is under way still stops it before the
 * final name is written (checked right before the no-clobber publish).
 */
import { VerificationError, type StreamUpload, type StreamUploadRequest, type UploadFileResult } from './artifact-store.js';
import { crc32cCombine, crc32cToBase64, crc32cUpdate } from './crc32c.js';
import type { OvaFinalParts } from './ova-parts.js';
import type { FileDigests } from './upload-hashing.js';

/** What a store's streamed upload does at each stage; {@link StreamUploadBase} calls these in order. */
export abstract class StreamUploadBase implements StreamUpload {
  readonly done: Promise<UploadFileResult>;
  protected readonly started = performance.now();
  protected readonly log: (line: string) => void;
  /** Bytes handed over so far (body), and where the body starts (the head's length), once known. */
  protected bodyStart: number | undefined;
  private next: number | undefined;
  private state: 'open' | 'finishing' | 'settled' = 'open';
  private abortReason: Error | undefined;
  private resolveDone!: (r: UploadFileResult) => void;
  private rejectDone!: (e: unknown) => void;

  constructor(
    readonly uri: string,
    protected readonly req: StreamUploadRequest,
  ) {
    this.log = req.log ?? (() => {});
    this.done = new Promise<UploadFileResult>((res, rej) => {
      this.resolveDone = res;
      this.rejectDone = rej;
    });
    // The caller awaits `done` after the writer returns; until then a rejection is not "unhandled".
    this.done.catch(() => undefined);
  }

  /** Called once, before the first body bytes are taken, with the offset the body starts at. */
  protected abstract start(bodyStart: number): Promise<void>;
  /** Takes body bytes at `offset` (contiguous, in order); the buffer is the writer's: copy what is kept. */
  protected abstract take(offset: number, bytes: Buffer): Promise<void>;
  /** CRC32C of every body byte taken (called after flush()). */
  protected abstract bodyCrc32c(): number;
  /** Lands every body byte taken (the last partial part, the parts in flight). */
  protected abstract flush(): Promise<void>;
  /** Puts head and tail in place, verifies the whole object against `expected`, calls `lastCheck`, publishes. */
  protected abstract complete(final: OvaFinalParts, expected: FileDigests, lastCheck: () => void): Promise<Omit<UploadFileResult, 'digests' | 'seconds'>>;
  /** After a failure or an abort: let work in flight settle, then clean up (or keep for a rerun, by the store's policy). */
  protected abstract discard(reason: unknown): Promise<void>;

  /** True once the upload failed or was aborted: work still running stops at its next step. */
  protected get ended(): boolean {
    return this.state === 'settled';
  }

  async body(offset: number, bytes: Buffer): Promise<void> {
    if (this.state !== 'open') throw new Error(`${this.uri}: body bytes at ${offset} after the upload was ${this.state === 'finishing' ? 'finished' : 'ended'}`);
    if (this.next === undefined) {
      this.bodyStart = this.next = offset;
      await this.start(offset);
    }
    if (offset !== this.next) {
      throw new VerificationError(`${this.uri}: the writer handed over bytes at offset ${offset}, expected ${this.next} (the body must be contiguous); nothing is published`);
    }
    this.next += bytes.length;
    if (bytes.length > 0) await this.take(offset, bytes);
  }

  async finish(final: OvaFinalParts): Promise<void> {
    if (this.state !== 'open') throw new Error(`${this.uri}: finish() after the upload was ${this.state === 'finishing' ? 'finished' : 'ended'}`);
    this.state = 'finishing';
    const work = async (): Promise<UploadFileResult> => {
      if (this.next === undefined) {
        this.bodyStart = this.next = final.head.length;
        await this.start(final.head.length);
      }
      const bodyBytes = this.next - this.bodyStart!;
      if (final.head.length !== this.bodyStart || final.head.length + bodyBytes + final.tail.length !== final.size) {
        throw new VerificationError(
          `${this.uri}: the archive's parts do not add up (head ${final.head.length} bytes, body ${bodyBytes} from offset ${this.bodyStart}, tail ${final.tail.length}, size ${final.size}); nothing was published`,
        );
      }
      await this.flush();
      const crc = crc32cCombine(crc32cCombine(crc32cUpdate(0, final.head), this.bodyCrc32c(), bodyBytes), crc32cUpdate(0, final.tail), final.tail.length);
      const digests: FileDigests = { size: final.size, sha256: final.sha256, crc32c: crc, crc32cBase64: crc32cToBase64(crc) };
      const r = await this.complete(final, digests, () => {
        if (this.abortReason) throw this.abortReason;
      });
      return { ...r, digests, seconds: (performance.now() - this.started) / 1000 };
    };
    // In the background: finish() returns now, `done` tells how the publish went.
    work().then(
      (r) => {
        this.state = 'settled';
        this.resolveDone(r);
      },
      (e: unknown) => this.fail(e),
    );
  }

  async abort(reason: Error): Promise<void> {
    if (this.state === 'settled') return;
    if (this.state === 'finishing') {
      // The publish checks this right before the final name is written.
      this.abortReason ??= reason;
      await this.done.catch(() => undefined);
      return;
    }
    this.abortReason = reason;
    await this.fail(reason);
  }

  private async fail(e: unknown): Promise<void> {
    this.state = 'settled';
    try {
      await this.discard(e);
    } catch (cleanup) {
      this.log(`${this.uri}: cleaning up after a failed upload: ${(cleanup as Error).message}`);
    }
    this.rejectDone(e);
  }
}
