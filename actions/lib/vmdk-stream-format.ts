/**
 * The byte encoding of a streamOptimized VMDK (VMware "Virtual Disk Format 1.1", sparse extent version 3):
 * the header, the embedded descriptor, grain markers, metadata markers (grain table, grain directory,
 * footer, end of stream), grain tables and the grain directory. Pure functions, no I/O: vmdk-stream.ts puts
 * them in order.
 *
 * Layout written (every structure starts on a 512-byte sector):
 *   header (gdOffset = GD_AT_END) · descriptor · padding to OVERHEAD_SECTORS ·
 *   for each grain table with data: its grains (marker + zlib data, padded), then its GT marker and GT ·
 *   GD marker and GD · footer marker and footer (the header with the real gdOffset) · end-of-stream marker.
 * A grain table entry holds the sector of its grain's marker; a directory entry the sector of its grain table
 * (after the table's marker); 0 means "no data" in both.
 */
import { createHash } from 'node:crypto';

export const SECTOR = 512;
/** Sectors per grain: 64 KiB grains, as qemu-img and VMware write them. */
export const GRAIN_SECTORS = 128;
export const GRAIN_BYTES = GRAIN_SECTORS * SECTOR;
/** Grain table entries per grain table: one table covers 32 MiB of the disk. */
export const GTES_PER_GT = 512;
export const GT_BYTES = GTES_PER_GT * 4;
/** The header's gdOffset when the grain directory is found through the footer. */
export const GD_AT_END = 0xffffffffffffffffn;
/** Sectors before the first grain: header and descriptor, rounded up to a grain as qemu-img does. */
export const OVERHEAD_SECTORS = 128;
/** Sectors reserved for the embedded descriptor (qemu-img reserves the same 20). */
export const DESCRIPTOR_SECTORS = 20;

const MAGIC = 0x564d444b; // "KDMV" on disk
const FLAG_NL_DETECT = 1 << 0;
const FLAG_COMPRESSED = 1 << 16;
const FLAG_MARKERS = 1 << 17;
const COMPRESSION_DEFLATE = 1;

export const MARKER_EOS = 0;
export const MARKER_GT = 1;
export const MARKER_GD = 2;
export const MARKER_FOOTER = 3;

/** Bytes rounded up to whole sectors. */
export const padToSector = (n: number): number => Math.ceil(n / SECTOR) * SECTOR;

/** The capacity in sectors of a disk of `virtualSize` bytes (a partial last sector counts). */
export const capacitySectors = (virtualSize: number): number => Math.ceil(virtualSize / SECTOR);

/** How many grains, grain tables and directory sectors a disk of `virtualSize` bytes has. */
export function geometry(virtualSize: number): { grains: number; tables: number; gdSectors: number } {
  const grains = Math.ceil(capacitySectors(virtualSize) / GRAIN_SECTORS);
  const tables = Math.ceil(grains / GTES_PER_GT);
  return { grains, tables, gdSectors: Math.ceil((tables * 4) / SECTOR) };
}

/** The 512-byte sparse extent header (and, with the real gdOffset, the footer). */
export function encodeHeader(virtualSize: number, gdOffsetSectors: bigint): Buffer {
  const h = Buffer.alloc(SECTOR);
  h.writeUInt32LE(MAGIC, 0);
  h.writeUInt32LE(3, 4); // version 3: streamOptimized with compressed grains
  h.writeUInt32LE(FLAG_NL_DETECT | FLAG_COMPRESSED | FLAG_MARKERS, 8);
  h.writeBigUInt64LE(BigInt(capacitySectors(virtualSize)), 12);
  h.writeBigUInt64LE(BigInt(GRAIN_SECTORS), 20);
  h.writeBigUInt64LE(1n, 28); // descriptorOffset
  h.writeBigUInt64LE(BigInt(DESCRIPTOR_SECTORS), 36);
  h.writeUInt32LE(GTES_PER_GT, 44);
  h.writeBigUInt64LE(0n, 48); // rgdOffset: no redundant directory in a stream
  h.writeBigUInt64LE(gdOffsetSectors, 56);
  h.writeBigUInt64LE(BigInt(OVERHEAD_SECTORS), 64);
  h.writeUInt8(0, 72); // uncleanShutdown
  h.write('\n \r\n', 73, 'latin1'); // the newline detection characters
  h.writeUInt16LE(COMPRESSION_DEFLATE, 77);
  return h;
}

/** A deterministic content id: the same disk name and size always give the same descriptor. */
export function descriptorCid(extentName: string, virtualSize: number): string {
  const cid = createHash('sha256').update(`${extentName}\0${virtualSize}`).digest().readUInt32BE(0);
  // 0xffffffff means "no parent" and 0xfffffffe is reserved: never produce them.
  return (cid >= 0xfffffffe ? cid - 2 : cid).toString(16).padStart(8, '0');
}

/** The embedded descriptor text, as qemu-img writes it for a streamOptimized disk. */
export function descriptorText(o: { extentName: string; virtualSize: number; adapterType?: string }): string {
  const sectors = capacitySectors(o.virtualSize);
  const adapter = o.adapterType ?? 'lsilogic';
  // The geometry qemu-img reports for SCSI adapters (255 heads, 63 sectors), cylinders capped at 65535.
  const cylinders = Math.min(65535, Math.floor(sectors / (255 * 63)));
  return [
    '# Disk DescriptorFile',
    'version=1',
    `CID=${descriptorCid(o.extentName, o.virtualSize)}`,
    'parentCID=ffffffff',
    'createType="streamOptimized"',
    '',
    '# Extent description',
    `RW ${sectors} SPARSE "${o.extentName.replace(/"/g, '')}"`,
    '',
    '# The Disk Data Base',
    '#DDB',
    '',
    'ddb.virtualHWVersion = "4"',
    `ddb.geometry.cylinders = "${cylinders}"`,
    'ddb.geometry.heads = "255"',
    'ddb.geometry.sectors = "63"',
    `ddb.adapterType = "${adapter}"`,
    '',
  ].join('\n');
}

/** Header, descriptor and padding: the first OVERHEAD_SECTORS sectors of the stream. */
export function encodePreamble(o: { extentName: string; virtualSize: number; adapterType?: string }): Buffer {
  const out = Buffer.alloc(OVERHEAD_SECTORS * SECTOR);
  encodeHeader(o.virtualSize, GD_AT_END).copy(out, 0);
  const text = Buffer.from(descriptorText(o));
  if (text.length > DESCRIPTOR_SECTORS * SECTOR) throw new Error(`the VMDK descriptor is ${text.length} bytes, more than the ${DESCRIPTOR_SECTORS * SECTOR} reserved`);
  text.copy(out, SECTOR);
  return out;
}

/** A metadata marker sector: `sectors` of metadata of `type` follow it. */
export function encodeMarker(type: number, sectors: number): Buffer {
  const m = Buffer.alloc(SECTOR);
  m.writeBigUInt64LE(BigInt(sectors), 0);
  m.writeUInt32LE(0, 8); // size 0: a metadata marker, not a grain
  m.writeUInt32LE(type, 12);
  return m;
}

/** A grain table (marker + table): `entries` holds the sector of each grain's marker, 0 for none. */
export function encodeGrainTable(entries: Uint32Array): Buffer {
  if (entries.length !== GTES_PER_GT) throw new Error(`a grain table has ${GTES_PER_GT} entries, not ${entries.length}`);
  const out = Buffer.alloc(SECTOR + GT_BYTES);
  encodeMarker(MARKER_GT, GT_BYTES / SECTOR).copy(out, 0);
  for (let i = 0; i < GTES_PER_GT; i++) out.writeUInt32LE(entries[i]!, SECTOR + i * 4);
  return out;
}

/** The grain directory (marker + directory), the footer (marker + header) and the end-of-stream marker. */
export function encodeTrailer(virtualSize: number, directory: Uint32Array, gdSector: number): Buffer {
  const gdBytes = padToSector(directory.length * 4);
  const out = Buffer.alloc(SECTOR + gdBytes + SECTOR + SECTOR + SECTOR);
  encodeMarker(MARKER_GD, gdBytes / SECTOR).copy(out, 0);
  for (let i = 0; i < directory.length; i++) out.writeUInt32LE(directory[i]!, SECTOR + i * 4);
  let at = SECTOR + gdBytes;
  encodeMarker(MARKER_FOOTER, 1).copy(out, at);
  encodeHeader(virtualSize, BigInt(gdSector)).copy(out, at + SECTOR);
  at += 2 * SECTOR;
  encodeMarker(MARKER_EOS, 0).copy(out, at);
  return out;
}

/** The header fields a reader needs, parsed back (tests and diagnostics). */
export interface VmdkHeader {
  magic: number;
  version: number;
  flags: number;
  capacity: bigint;
  grainSize: bigint;
  descriptorOffset: bigint;
  descriptorSize: bigint;
  numGTEsPerGT: number;
  rgdOffset: bigint;
  gdOffset: bigint;
  overHead: bigint;
  compressAlgorithm: number;
}

export function parseHeader(b: Buffer): VmdkHeader {
  return {
    magic: b.readUInt32LE(0),
    version: b.readUInt32LE(4),
    flags: b.readUInt32LE(8),
    capacity: b.readBigUInt64LE(12),
    grainSize: b.readBigUInt64LE(20),
    descriptorOffset: b.readBigUInt64LE(28),
    descriptorSize: b.readBigUInt64LE(36),
    numGTEsPerGT: b.readUInt32LE(44),
    rgdOffset: b.readBigUInt64LE(48),
    gdOffset: b.readBigUInt64LE(56),
    overHead: b.readBigUInt64LE(64),
    compressAlgorithm: b.readUInt16LE(77),
  };
}
