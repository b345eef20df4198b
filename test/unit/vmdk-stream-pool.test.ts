import { afterEach, describe, expect, it } from '@jest/globals';
import { randomFillSync } from 'node:crypto';
import { deflateSync, inflateSync } from 'node:zlib';
import { CompressionPool, SAMPLE_PIECE, SAMPLE_PIECES } from '../../actions/lib/vmdk-stream-pool.js';
import { GRAIN_BYTES, GRAIN_SECTORS, SECTOR } from '../../actions/lib/vmdk-stream-format.js';

const random = (n = GRAIN_BYTES) => randomFillSync(Buffer.alloc(n));
const logText = () => {
  let t = '';
  for (let i = 0; t.length < GRAIN_BYTES; i++) t += `2026-12-01T00:00:${String(i % 60).padStart(2, '0')}Z lab[${i % 97}]: link ${i % 48} up seq=${i}\n`;
  return Buffer.from(t.slice(0, GRAIN_BYTES));
};

/** The zlib streams of a compressed batch, grain by grain, read back from the grain markers. */
function grainsOf(bytes: Buffer, grains: { grain: number; offset: number }[]): { lba: bigint; zlib: Buffer }[] {
  return grains.map(({ offset }) => {
    const size = bytes.readUInt32LE(offset + 8);
    expect(offset % SECTOR).toBe(0);
    return { lba: bytes.readBigUInt64LE(offset), zlib: bytes.subarray(offset + 12, offset + 12 + size) };
  });
}

let pool: CompressionPool | undefined;
afterEach(async () => {
  await pool?.close();
  pool = undefined;
});

async function compress(data: Buffer[], storeIncompressible = true, level = -1) {
  pool = new CompressionPool(1, level, storeIncompressible);
  const joined = Buffer.concat(data);
  const ab = joined.buffer.slice(joined.byteOffset, joined.byteOffset + joined.length) as ArrayBuffer;
  const grains = data.map((_, i) => 10 + i);
  const batch = await pool.compress(grains, ab);
  return grainsOf(batch.bytes, batch.grains);
}

/** zlib's FLEVEL bits (the second header byte): 0 for level 0 (stored), 2 for the default level. */
const flevel = (z: Buffer) => z[1]! >> 6;

describe('the compression pool: incompressible grains are stored, everything else deflated', () => {
  it('stores a random grain (a valid zlib stream, no larger than deflating it) and deflates log text', async () => {
    const r = random();
    const t = logText();
    const [stored, deflated] = await compress([r, t]);
    expect(stored!.lba).toBe(10n * BigInt(GRAIN_SECTORS));
    expect(deflated!.lba).toBe(11n * BigInt(GRAIN_SECTORS));
    expect(flevel(stored!.zlib)).toBe(0);
    expect(inflateSync(stored!.zlib).equals(r)).toBe(true);
    // Framed in sectors, the stored grain never takes more room than zlib's own output at the default level.
    const sectors = (n: number) => Math.ceil((12 + n) / SECTOR);
    expect(sectors(stored!.zlib.length)).toBeLessThanOrEqual(sectors(deflateSync(r).length));
    expect(flevel(deflated!.zlib)).toBe(2);
    expect(inflateSync(deflated!.zlib).equals(t)).toBe(true);
    expect(deflated!.zlib.length).toBeLessThan(GRAIN_BYTES / 3);
  });

  it('deflates every grain when the check is off', async () => {
    const r = random();
    const [z] = await compress([r], false);
    expect(flevel(z!.zlib)).toBe(2);
    expect(inflateSync(z!.zlib).equals(r)).toBe(true);
  });

  it('deflates a grain of uniformly distributed bytes that repeats (a random 4000-byte block over and over)', async () => {
    const block = random(4000);
    const g = Buffer.alloc(GRAIN_BYTES);
    for (let at = 0; at < GRAIN_BYTES; at += block.length) block.copy(g, at);
    const [z] = await compress([g]);
    expect(inflateSync(z!.zlib).equals(g)).toBe(true);
    expect(z!.zlib.length).toBeLessThan(10_000);
  });

  it('deflates a random grain with a run of zeros or of text between the sampled pieces (the whole grain is looked at)', async () => {
    // Offsets of the sampled pieces, as the worker computes them; the runs below avoid all of them.
    const stride = GRAIN_BYTES / SAMPLE_PIECES;
    const pieces = Array.from({ length: SAMPLE_PIECES }, (_, k) => k * stride + ((k * 797) % (stride - SAMPLE_PIECE)));
    const gap = pieces.findIndex((at, k) => (pieces[k + 1] ?? GRAIN_BYTES) - (at + SAMPLE_PIECE) > 4096);
    expect(gap).toBeGreaterThanOrEqual(0);
    const runAt = pieces[gap]! + SAMPLE_PIECE + 256;
    const zeros = random();
    zeros.fill(0, runAt, runAt + 3072);
    const text = random();
    logText().copy(text, runAt, 0, 3072);
    const [a, b] = await compress([zeros, text]);
    for (const [z, g] of [
      [a!, zeros],
      [b!, text],
    ] as const) {
      expect(flevel(z.zlib)).toBe(2);
      expect(inflateSync(z.zlib).equals(g)).toBe(true);
      expect(z.zlib.length).toBeLessThan(GRAIN_BYTES - 1500);
    }
  });

  it('deflates a grain of text whose sampled pieces alone are random', async () => {
    const g = logText();
    const stride = GRAIN_BYTES / SAMPLE_PIECES;
    for (let k = 0; k < SAMPLE_PIECES; k++) {
      const at = k * stride + ((k * 797) % (stride - SAMPLE_PIECE));
      random(SAMPLE_PIECE).copy(g, at);
    }
    const [z] = await compress([g]);
    expect(flevel(z!.zlib)).toBe(2);
    expect(inflateSync(z!.zlib).equals(g)).toBe(true);
    expect(z!.zlib.length).toBeLessThan(GRAIN_BYTES / 2);
  });

  it('leaves all-zero grains out and honours level 0 (everything stored)', async () => {
    const r = random();
    const [z] = await compress([Buffer.alloc(GRAIN_BYTES), r], true, 0);
    expect(z!.lba).toBe(11n * BigInt(GRAIN_SECTORS));
    expect(flevel(z!.zlib)).toBe(0);
    expect(inflateSync(z!.zlib).equals(r)).toBe(true);
  });
});
