/**
 * CRC32C (Castagnoli), the checksum Google Cloud Storage keeps for every object, computed fast enough to
 * run beside SHA-256 in one read pass.
 *
 * The `CRC32C` class that @google-cloud/storage exports processes one byte per table lookup (about 90 MiB/s
 * here), which would make hashing a 100 GB appliance take longer than uploading it. This module uses the
 * slicing-by-16 table method over 32-bit words (about 1–1.5 GiB/s in V8) and produces the same values
 * (the tests check it against the library's class and the RFC 3720 test vector). It also combines the
 * CRCs of two adjacent byte ranges without reading them again, which is how a composed object's CRC32C
 * follows from its components' CRCs.
 */
import { endianness } from 'node:os';

const POLY = 0x82f63b78; // reflected Castagnoli polynomial

/** 16 tables of 256 entries: table t maps a byte to its CRC contribution t bytes further on. */
const TABLES = (() => {
  const t = new Int32Array(16 * 256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
    t[i] = c;
  }
  for (let i = 0; i < 256; i++) {
    for (let s = 1; s < 16; s++) {
      const prev = t[(s - 1) * 256 + i]!;
      t[s * 256 + i] = (prev >>> 8) ^ t[prev & 0xff]!;
    }
  }
  return t;
})();

const LITTLE_ENDIAN = endianness() === 'LE';

/**
 * Continues a CRC32C over `data`. Start with `crc = 0`; the result is the CRC of everything fed so far
 * (an unsigned 32-bit number).
 */
export function crc32cUpdate(crc: number, data: Uint8Array): number {
  const T = TABLES;
  let c = ~crc;
  let i = 0;
  const n = data.length;
  const base = data.byteOffset;
  while (i < n && (!LITTLE_ENDIAN || ((base + i) & 3) !== 0)) c = T[(c ^ data[i++]!) & 0xff]! ^ (c >>> 8);
  const words = LITTLE_ENDIAN ? ((n - i) >>> 4) * 4 : 0;
  if (words > 0) {
    const w = new Int32Array(data.buffer, base + i, words);
    for (let j = 0; j < words; j += 4) {
      const a = w[j]! ^ c;
      const b = w[j + 1]!;
      const d = w[j + 2]!;
      const e = w[j + 3]!;
      c =
        T[3840 + (a & 0xff)]! ^ T[3584 + ((a >>> 8) & 0xff)]! ^ T[3328 + ((a >>> 16) & 0xff)]! ^ T[3072 + (a >>> 24)]! ^
        T[2816 + (b & 0xff)]! ^ T[2560 + ((b >>> 8) & 0xff)]! ^ T[2304 + ((b >>> 16) & 0xff)]! ^ T[2048 + (b >>> 24)]! ^
        T[1792 + (d & 0xff)]! ^ T[1536 + ((d >>> 8) & 0xff)]! ^ T[1280 + ((d >>> 16) & 0xff)]! ^ T[1024 + (d >>> 24)]! ^
        T[768 + (e & 0xff)]! ^ T[512 + ((e >>> 8) & 0xff)]! ^ T[256 + ((e >>> 16) & 0xff)]! ^ T[e >>> 24]!;
    }
    i += words * 4;
  }
  while (i < n) c = T[(c ^ data[i++]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

/** CRC32C of one buffer. */
export function crc32c(data: Uint8Array): number {
  return crc32cUpdate(0, data);
}

function gf2Times(mat: Uint32Array, vec: number): number {
  let sum = 0;
  for (let i = 0; vec !== 0; i++, vec >>>= 1) if (vec & 1) sum ^= mat[i]!;
  return sum >>> 0;
}

function gf2Square(square: Uint32Array, mat: Uint32Array): void {
  for (let n = 0; n < 32; n++) square[n] = gf2Times(mat, mat[n]!);
}

/**
 * The CRC32C of A followed by B, from crc(A), crc(B) and the length of B, without the data
 * (the GF(2) matrix method of zlib's crc32_combine). `lengthB` may exceed 2^32.
 */
export function crc32cCombine(crcA: number, crcB: number, lengthB: number): number {
  if (lengthB <= 0) return crcA >>> 0;
  const even = new Uint32Array(32);
  const odd = new Uint32Array(32);
  odd[0] = POLY;
  for (let n = 1, row = 1; n < 32; n++, row <<= 1) odd[n] = row;
  gf2Square(even, odd); // two zero bits
  gf2Square(odd, even); // four zero bits
  let crc = crcA >>> 0;
  let len = lengthB;
  do {
    gf2Square(even, odd);
    if (len % 2 === 1) crc = gf2Times(even, crc);
    len = Math.floor(len / 2);
    if (len === 0) break;
    gf2Square(odd, even);
    if (len % 2 === 1) crc = gf2Times(odd, crc);
    len = Math.floor(len / 2);
  } while (len !== 0);
  return (crc ^ crcB) >>> 0;
}

/** The base64 big-endian form GCS uses in object metadata (`crc32c`) and `x-goog-hash`. */
export function crc32cToBase64(crc: number): string {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(crc >>> 0);
  return b.toString('base64');
}

/** Reads the GCS base64 form back into a number; undefined when it is not a 4-byte value. */
export function crc32cFromBase64(text: string): number | undefined {
  const b = Buffer.from(text, 'base64');
  return b.length === 4 ? b.readUInt32BE(0) : undefined;
}
