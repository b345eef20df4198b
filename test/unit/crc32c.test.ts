import { describe, expect, it } from '@jest/globals';
import { CRC32C } from '@google-cloud/storage';
import { randomBytes } from 'node:crypto';
import { crc32c, crc32cCombine, crc32cFromBase64, crc32cToBase64, crc32cUpdate } from '../../actions/lib/crc32c.js';

function libraryCrc(data: Buffer): string {
  const c = new CRC32C();
  c.update(data);
  return c.toString();
}

describe('crc32c', () => {
  it('matches the RFC 3720 check value', () => {
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283);
    expect(crc32c(Buffer.alloc(0))).toBe(0);
  });

  it('matches the @google-cloud/storage CRC32C class on unaligned slices of random data', () => {
    const data = randomBytes(1_000_003);
    for (const [a, b] of [
      [0, data.length],
      [1, 17],
      [3, 999_999],
      [5, 5],
    ] as const) {
      const slice = data.subarray(a, b);
      expect(crc32cToBase64(crc32c(slice))).toBe(libraryCrc(slice));
    }
  });

  it('continues across buffers', () => {
    const data = randomBytes(100_000);
    expect(crc32cUpdate(crc32cUpdate(0, data.subarray(0, 33_333)), data.subarray(33_333))).toBe(crc32c(data));
  });

  it('combines the CRCs of adjacent ranges without the data', () => {
    const a = randomBytes(70_001);
    const b = randomBytes(12_345);
    expect(crc32cCombine(crc32c(a), crc32c(b), b.length)).toBe(crc32c(Buffer.concat([a, b])));
    expect(crc32cCombine(crc32c(a), 0, 0)).toBe(crc32c(a));
  });

  it('combines over lengths beyond 4 GiB (zeros have a computable CRC)', () => {
    // crc(zeros(n)) for big n via combine must agree with repeated combination of smaller runs.
    const zeros = Buffer.alloc(1 << 20);
    const mib = crc32c(zeros);
    let crc = 0;
    for (let i = 0; i < 8; i++) crc = crc32cCombine(crc, mib, zeros.length);
    const eight = crc;
    let big = 0;
    for (let i = 0; i < 640; i++) big = crc32cCombine(big, eight, 8 << 20);
    expect(crc32cCombine(0, big, 5 * 1024 * (1 << 20))).toBe(big);
    expect(big).toBeGreaterThanOrEqual(0);
  });

  it('converts to and from the base64 form GCS uses', () => {
    expect(crc32cToBase64(0xe3069283)).toBe('4waSgw==');
    expect(crc32cFromBase64('4waSgw==')).toBe(0xe3069283);
    expect(crc32cFromBase64('AAAA')).toBeUndefined();
  });
});
