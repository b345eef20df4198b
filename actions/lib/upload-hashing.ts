/**
 * One read pass, every checksum: SHA-256 (what people verify with `sha256sum -c`), CRC32C (what GCS keeps
 * and compares) and, where the stored object will have one, MD5 — fed block by block while the same bytes
 * are being uploaded or written, so a 100 GB appliance is read once.
 */
import { createHash, type Hash } from 'node:crypto';
import type { BigIntStats } from 'node:fs';
import { open, stat, type FileHandle } from 'node:fs/promises';
import { SourceChangedError, type SourceIdentity } from './artifact-store.js';
import { crc32cCombine, crc32cToBase64, crc32cUpdate } from './crc32c.js';

/** The checksums of everything fed to an {@link UploadHasher}. */
export interface FileDigests {
  size: number;
  /** Lower-case hex. */
  sha256: string;
  /** Unsigned 32-bit value. */
  crc32c: number;
  /** Base64, the form GCS shows in object metadata. */
  crc32cBase64: string;
  /** Base64 MD5, when the hasher was asked for it. */
  md5?: string;
}

/** Incremental SHA-256 + CRC32C (+ MD5) over data fed in order. */
export class UploadHasher {
  private readonly sha = createHash('sha256');
  private readonly md5: Hash | undefined;
  private crc = 0;
  private size = 0;

  constructor(opts: { md5?: boolean } = {}) {
    this.md5 = opts.md5 ? createHash('md5') : undefined;
  }

  /**
   * Feeds the next block and returns the block's own CRC32C (an upload part's checksum comes for free:
   * the file's CRC is combined from the blocks' CRCs, so each byte goes through CRC32C once).
   */
  update(block: Uint8Array): number {
    const blockCrc = crc32cUpdate(0, block);
    this.crc = this.size === 0 ? blockCrc : crc32cCombine(this.crc, blockCrc, block.length);
    this.size += block.length;
    this.sha.update(block);
    this.md5?.update(block);
    return blockCrc;
  }

  /** Bytes fed so far. */
  get bytes(): number {
    return this.size;
  }

  /** Finishes the hashes; the hasher cannot be fed afterwards. */
  digest(): FileDigests {
    const d: FileDigests = { size: this.size, sha256: this.sha.digest('hex'), crc32c: this.crc, crc32cBase64: crc32cToBase64(this.crc) };
    if (this.md5) d.md5 = this.md5.digest('base64');
    return d;
  }
}

/** Reads a file once and returns its checksums (used for verification and the hashing benchmark). */
export async function hashFile(path: string, opts: { md5?: boolean; blockSize?: number } = {}): Promise<FileDigests> {
  const hasher = new UploadHasher(opts);
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.allocUnsafe(opts.blockSize ?? 4 << 20);
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      hasher.update(buf.subarray(0, bytesRead));
    }
  } finally {
    await fh.close();
  }
  return hasher.digest();
}

/** CRC32C and size of a file, for checking what was written to a destination directory. */
export async function crc32cOfFile(path: string, blockSize = 4 << 20): Promise<{ crc32c: number; size: number }> {
  const fh = await open(path, 'r');
  let crc = 0;
  let size = 0;
  try {
    const buf = Buffer.allocUnsafe(blockSize);
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      crc = crc32cUpdate(crc, buf.subarray(0, bytesRead));
      size += bytesRead;
    }
  } finally {
    await fh.close();
  }
  return { crc32c: crc, size };
}

/** The `.sha256` companion line, `sha256sum -c` compatible: `<hex>  <file name>`. */
export function sha256sumLine(sha256: string, fileName: string): string {
  return `${sha256}  ${fileName}\n`;
}

// ------------------------------------------------------------------------------------ the source stays put

function identityFrom(s: BigIntStats): SourceIdentity {
  return { dev: s.dev, ino: s.ino, size: Number(s.size), mtimeNs: s.mtimeNs };
}

/** How `now` differs from `pinned`, in words for the error; undefined when it is the same file, unchanged. */
export function describeSourceChange(pinned: SourceIdentity, now: SourceIdentity | undefined): string | undefined {
  if (now === undefined) return 'removed';
  if (now.dev !== pinned.dev || now.ino !== pinned.ino) {
    return `replaced by another file${now.size !== pinned.size ? `, size ${pinned.size} → ${now.size} bytes` : ''}`;
  }
  if (now.size !== pinned.size) return `size ${pinned.size} → ${now.size} bytes`;
  if (now.mtimeNs !== pinned.mtimeNs) return 'modified';
  return undefined;
}

/** The identity of the file at `path` now (stat, following links); undefined when it is gone. */
export async function sourceIdentity(path: string): Promise<SourceIdentity | undefined> {
  try {
    return identityFrom(await stat(path, { bigint: true }));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

/**
 * Pins a local file before an upload starts: its device, inode, size and modification time. Pass the result
 * as the upload request's `source`; the store refuses to publish when the file no longer matches it.
 */
export async function pinSource(path: string): Promise<SourceIdentity> {
  const id = await sourceIdentity(path);
  if (!id) throw Object.assign(new Error(`${path} does not exist`), { code: 'ENOENT' });
  return id;
}

/**
 * Opens a local file for an upload and checks that the opened file is the pinned one (`pinned`, else the
 * file at the path when it was opened): fstat of the descriptor and stat of the path must both match.
 * Returns the handle and the identity the upload must keep.
 */
export async function openPinnedSource(path: string, pinned?: SourceIdentity): Promise<{ fh: FileHandle; identity: SourceIdentity }> {
  const fh = await open(path, 'r');
  try {
    const opened = identityFrom(await fh.stat({ bigint: true }));
    const identity = pinned ?? opened;
    const change = describeSourceChange(identity, opened) ?? describeSourceChange(identity, await sourceIdentity(path));
    if (change) throw new SourceChangedError(path, change);
    return { fh, identity };
  } catch (e) {
    await fh.close();
    throw e;
  }
}

/**
 * The check before publishing: the open file (fstat) and the file at the path (stat) still have the pinned
 * identity, and the bytes hashed and the bytes sent (or found verified from an earlier run) both equal the
 * pinned size. Throws a {@link SourceChangedError} otherwise.
 */
export async function assertSourceUnchanged(path: string, fh: FileHandle, pinned: SourceIdentity, counts: { hashed: number; sent: number }): Promise<void> {
  const change =
    describeSourceChange(pinned, identityFrom(await fh.stat({ bigint: true }))) ??
    describeSourceChange(pinned, await sourceIdentity(path)) ??
    (counts.hashed !== pinned.size ? `size ${pinned.size} → ${counts.hashed} bytes read` : undefined) ??
    (counts.sent !== pinned.size ? `size ${pinned.size} → ${counts.sent} bytes sent` : undefined);
  if (change) throw new SourceChangedError(path, change);
}

/** The error for a read that hit the end of the file before the pinned size: says how big the file is now. */
export async function sourceShrank(path: string, fh: FileHandle, pinned: SourceIdentity): Promise<SourceChangedError> {
  const now = await fh.stat({ bigint: true }).then(identityFrom, () => undefined);
  const size = now ? now.size : 0;
  return new SourceChangedError(path, `size ${pinned.size} → ${size} bytes`);
}
