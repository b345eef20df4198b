/**
 * The streamed upload to a directory (stream-upload.ts): the body is written into `<name>.labforge-partial`
 * at its own offset as the writer hands it over (awaited: the disk paces the writer; no buffers beyond one
 * compare buffer); at finish the head and tail are written at their offsets, the file is truncated to the
 * archive's size and fsynced, read back, and its size and CRC32C must equal those combined here from the
 * handed-over bytes; then it is published without clobbering exactly as an upload by path (link(), or
 * O_EXCL + rename() where there are no hard links).
 *
 * Resume: a rerun that packs the same image hands over the same bytes; body bytes that are already in the
 * partial file at the same offset are compared and not written again (bytesReused), from the first
 * difference on everything is written. The final read-back covers what was kept. The partial file is kept
 * after a failed write (a rerun resumes) and removed after an abort from the packing, a failed check or an
 * existing release.
 */
import { mkdir, open, unlink, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { AlreadyPublishedError, VerificationError, type StreamUploadRequest, type UploadFileResult } from './artifact-store.js';
import { crc32cToBase64, crc32cUpdate } from './crc32c.js';
import type { DirectoryStore } from './file-destination.js';
import type { OvaFinalParts } from './ova-parts.js';
import { StreamUploadBase } from './stream-upload.js';
import { crc32cOfFile, type FileDigests } from './upload-hashing.js';

/** Opens a streamed upload of `req.key`, written as `<file><partialSuffix>` (refusing an existing release unless overwrite). */
export async function openFileStreamUpload(store: DirectoryStore, req: StreamUploadRequest, partialSuffix: string): Promise<FileStreamUpload> {
  const uri = store.uri(req.key);
  const final = store.path(req.key);
  if (!req.overwrite && (await store.exists(req.key))) throw new AlreadyPublishedError(uri);
  const createdDir = await mkdir(dirname(final), { recursive: true });
  const temp = final + partialSuffix;
  let dst: FileHandle;
  try {
    dst = await open(temp, 'r+');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    dst = await open(temp, 'w+');
  }
  const already = (await dst.stat()).size;
  if (already > 0) req.log?.(`${uri}: resuming, ${already} bytes of an earlier run are in ${temp}`);
  return new FileStreamUpload(store, req, uri, final, temp, dst, already, createdDir);
}

export class FileStreamUpload extends StreamUploadBase {
  private crc = 0;
  private diverged: boolean;
  private old = Buffer.alloc(0);
  private bytesSent = 0;
  private bytesReused = 0;
  private writeFailed = false;

  constructor(
    private readonly store: DirectoryStore,
    req: StreamUploadRequest,
    uri: string,
    private readonly final: string,
    private readonly temp: string,
    private dst: FileHandle | undefined,
    private readonly already: number,
    private readonly createdDir: string | undefined,
  ) {
    super(uri, req);
    this.diverged = already === 0;
  }

  protected async start(): Promise<void> {}

  protected async take(offset: number, bytes: Buffer): Promise<void> {
    if (this.ended || !this.dst) throw new Error(`${this.uri}: the upload was aborted`);
    this.crc = crc32cUpdate(this.crc, bytes);
    if (!this.diverged && offset + bytes.length <= this.already) {
      if (this.old.length < bytes.length) this.old = Buffer.allocUnsafe(bytes.length);
      const { bytesRead } = await this.dst.read(this.old, 0, bytes.length, offset);
      if (bytesRead === bytes.length && this.old.subarray(0, bytesRead).equals(bytes)) {
        this.bytesReused += bytes.length;
        this.req.onBytes?.(bytes.length);
        return;
      }
    }
    this.diverged = true;
    await this.write(bytes, offset);
    this.bytesSent += bytes.length;
    this.req.onBytes?.(bytes.length);
  }

  private async write(bytes: Buffer, offset: number): Promise<void> {
    try {
      for (let done = 0; done < bytes.length; ) done += (await this.dst!.write(bytes, done, bytes.length - done, offset + done)).bytesWritten;
    } catch (e) {
      this.writeFailed = true;
      throw e;
    }
  }

  protected bodyCrc32c(): number {
    return this.crc;
  }

  protected async flush(): Promise<void> {
    this.old = Buffer.alloc(0);
  }

  protected async complete(final: OvaFinalParts, expected: FileDigests, lastCheck: () => void): Promise<Omit<UploadFileResult, 'digests' | 'seconds'>> {
    await this.write(final.head, 0);
    await this.write(final.tail, final.size - final.tail.length);
    this.bytesSent += final.head.length + final.tail.length;
    this.req.onBytes?.(final.head.length + final.tail.length);
    await this.dst!.truncate(final.size);
    await this.dst!.sync();
    await this.dst!.close();
    this.dst = undefined;
    const check = await crc32cOfFile(this.temp);
    if (check.size !== expected.size || check.crc32c !== expected.crc32c) {
      throw new VerificationError(
        `${this.uri}: what was written does not match the packed OVA (written: ${check.size} bytes, CRC32C ${crc32cToBase64(check.crc32c)}; packed: ${expected.size} bytes, CRC32C ${expected.crc32cBase64}); nothing was published — check the disk and run again`,
      );
    }
    lastCheck();
    await this.store.publishTemp(this.temp, this.final, this.req.overwrite, this.uri);
    await this.store.syncDir(dirname(this.final));
    await unlink(this.temp).catch(() => {});
    const blocks = (n: number) => Math.ceil(n / (8 << 20));
    return { key: this.req.key, uri: this.uri, bytesSent: this.bytesSent, bytesReused: this.bytesReused, parts: Math.max(1, blocks(final.size)), partsReused: Math.floor(this.bytesReused / (8 << 20)) };
  }

  protected async discard(reason: unknown): Promise<void> {
    await this.dst?.close().catch(() => {});
    this.dst = undefined;
    // A failed write (a full disk, a dropped share) keeps the partial file for the rerun; an abort or a failed check does not.
    if (this.writeFailed && !(reason instanceof VerificationError || reason instanceof AlreadyPublishedError)) {
      this.log(`${this.uri}: kept ${this.temp} so that a rerun resumes`);
      return;
    }
    await unlink(this.temp).catch(() => {});
    if (this.createdDir !== undefined) await this.store.removeEmptyDirs(dirname(this.final), this.createdDir);
  }
}
