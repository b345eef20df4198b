/**
 * One read pass, every checksum: SHA-256 (what people verify with `sha256sum -c`), CRC32C (what GCS keeps
 * and compares) and, where the stored object will have one, MD5 — fed block by block while the same bytes
 * are being uploaded or written, so a 100 GB appliance is read once.
 */
import { createHash, type Hash } from 'node:crypto';
import { open } from 'node:fs/promises';
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
