import { describe, expect, it } from '@jest/globals';
import {
  DESCRIPTOR_SECTORS,
  GD_AT_END,
  GRAIN_SECTORS,
  GTES_PER_GT,
  MARKER_EOS,
  MARKER_FOOTER,
  MARKER_GD,
  MARKER_GT,
  OVERHEAD_SECTORS,
  SECTOR,
  descriptorCid,
  descriptorText,
  encodeGrainTable,
  encodeHeader,
  encodeMarker,
  encodePreamble,
  encodeTrailer,
  geometry,
  parseHeader,
} from '../../actions/lib/vmdk-stream-format.js';

describe('streamOptimized VMDK encoding', () => {
  it('writes a version 3 header with compressed grains, markers, 64 KiB grains and the directory at the end', () => {
    const h = encodeHeader(3 * 1024 * 1024 + 512, GD_AT_END);
    expect(h.length).toBe(SECTOR);
    expect(h.subarray(0, 4).toString('latin1')).toBe('KDMV');
    expect(parseHeader(h)).toEqual({
      magic: 0x564d444b,
      version: 3,
      flags: 0x30001,
      capacity: BigInt(6 * 1024 + 1),
      grainSize: 128n,
      descriptorOffset: 1n,
      descriptorSize: BigInt(DESCRIPTOR_SECTORS),
      numGTEsPerGT: 512,
      rgdOffset: 0n,
      gdOffset: 0xffffffffffffffffn,
      overHead: BigInt(OVERHEAD_SECTORS),
      compressAlgorithm: 1,
    });
    expect(h.subarray(73, 77).toString('latin1')).toBe('\n \r\n');
    expect(parseHeader(encodeHeader(1 << 20, 4242n)).gdOffset).toBe(4242n);
  });

  it('embeds a streamOptimized descriptor with the extent, the capacity and the lsilogic adapter', () => {
    const text = descriptorText({ extentName: 'app-disk1.vmdk', virtualSize: 100 * 2 ** 30 });
    expect(text).toContain('createType="streamOptimized"');
    expect(text).toContain(`RW ${(100 * 2 ** 30) / 512} SPARSE "app-disk1.vmdk"`);
    expect(text).toContain('ddb.adapterType = "lsilogic"');
    expect(text).toMatch(/^CID=[0-9a-f]{8}$/m);
    expect(text).toContain('parentCID=ffffffff');
    const preamble = encodePreamble({ extentName: 'app-disk1.vmdk', virtualSize: 100 * 2 ** 30 });
    expect(preamble.length).toBe(OVERHEAD_SECTORS * SECTOR);
    expect(preamble.subarray(SECTOR, SECTOR + text.length).toString()).toBe(text);
    expect(preamble.subarray(SECTOR + text.length).every((b) => b === 0)).toBe(true);
  });

  it('derives the CID from the name and size: the same disk gives the same bytes, another disk another CID', () => {
    expect(descriptorCid('a.vmdk', 1 << 30)).toBe(descriptorCid('a.vmdk', 1 << 30));
    expect(descriptorCid('a.vmdk', 1 << 30)).not.toBe(descriptorCid('a.vmdk', 2 << 30));
    expect(descriptorCid('a.vmdk', 1 << 30)).not.toBe(descriptorCid('b.vmdk', 1 << 30));
  });

  it('counts grains, grain tables and directory sectors, a partial last grain included', () => {
    expect(geometry(64 * 1024)).toEqual({ grains: 1, tables: 1, gdSectors: 1 });
    expect(geometry(32 * 2 ** 20 + 512)).toEqual({ grains: 513, tables: 2, gdSectors: 1 });
    expect(geometry(100 * 2 ** 30)).toEqual({ grains: 1638400, tables: 3200, gdSectors: 25 });
  });

  it('frames metadata: a marker sector with the sector count and type, then the table', () => {
    const m = encodeMarker(MARKER_GD, 3);
    expect([m.readBigUInt64LE(0), m.readUInt32LE(8), m.readUInt32LE(12)]).toEqual([3n, 0, MARKER_GD]);
    const entries = new Uint32Array(GTES_PER_GT);
    entries[0] = 128;
    entries[511] = 999;
    const gt = encodeGrainTable(entries);
    expect(gt.length).toBe(SECTOR + 2048);
    expect([gt.readBigUInt64LE(0), gt.readUInt32LE(12)]).toEqual([4n, MARKER_GT]);
    expect([gt.readUInt32LE(SECTOR), gt.readUInt32LE(SECTOR + 511 * 4)]).toEqual([128, 999]);
    expect(() => encodeGrainTable(new Uint32Array(10))).toThrow(/512 entries/);
  });

  it('ends with the directory, a footer holding the directory offset, and the end-of-stream marker', () => {
    const dir = new Uint32Array([300, 0, 900]);
    const t = encodeTrailer(96 * 2 ** 20, dir, 1234);
    expect(t.length).toBe(5 * SECTOR);
    expect([t.readBigUInt64LE(0), t.readUInt32LE(12)]).toEqual([1n, MARKER_GD]);
    expect([t.readUInt32LE(SECTOR), t.readUInt32LE(SECTOR + 4), t.readUInt32LE(SECTOR + 8)]).toEqual([300, 0, 900]);
    expect([t.readBigUInt64LE(2 * SECTOR), t.readUInt32LE(2 * SECTOR + 12)]).toEqual([1n, MARKER_FOOTER]);
    const footer = parseHeader(t.subarray(3 * SECTOR, 4 * SECTOR));
    expect(footer.gdOffset).toBe(1234n);
    expect(footer.capacity).toBe(BigInt((96 * 2 ** 20) / 512));
    expect(footer.grainSize).toBe(BigInt(GRAIN_SECTORS));
    expect(t.subarray(4 * SECTOR).every((b) => b === 0)).toBe(true);
    expect(t.readUInt32LE(4 * SECTOR + 12)).toBe(MARKER_EOS);
  });
});
