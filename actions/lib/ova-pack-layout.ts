/**
 * The tar layout of an OVA written in place (docs/adr/003-ova-packing.md): a head of fixed length reserved
 * first, the disk's bytes (the body), then a tail. With the manifest second (OVF → MF → VMDK, as OVF 1.x
 * importers expect) the head holds the descriptor, the manifest and the disk's tar header and the tail is
 * the disk's padding and the end-of-archive blocks; with the manifest at the end (OVF → VMDK → MF, which
 * DSP0243 1.1 and later allow) the manifest moves into the tail. Either way every byte of the head and the
 * tail is known only when the disk is complete; their lengths are known before.
 */
import { pack } from 'tar-stream';

export const BLOCK = 512;
export const padTo512 = (n: number): number => Math.ceil(n / BLOCK) * BLOCK;

/** Where the manifest goes: after the descriptor (`second`) or after the disk (`end`). */
export type ManifestPosition = 'second' | 'end';
export const MANIFEST_POSITIONS: readonly ManifestPosition[] = ['second', 'end'];

/** The byte length of the head for a descriptor and a manifest of these lengths. */
export function headLength(ovfLength: number, mfLength: number, manifest: ManifestPosition): number {
  const ovf = BLOCK + padTo512(ovfLength);
  return manifest === 'second' ? ovf + BLOCK + padTo512(mfLength) + BLOCK : ovf + BLOCK;
}

/** The names of the entries in archive order. */
export function entryOrder<T>(ovf: T, mf: T, disk: T, manifest: ManifestPosition): [T, T, T] {
  return manifest === 'second' ? [ovf, mf, disk] : [ovf, disk, mf];
}

interface Part {
  name: string;
  size: number;
  body?: Buffer;
}

/** Encodes ustar headers (and small bodies) with tar-stream; returns the first `expected` bytes it produces. */
async function encodeTar(parts: Part[], mtime: Date, expected: number, finalize: boolean): Promise<Buffer> {
  const tar = pack();
  const chunks: Buffer[] = [];
  let total = 0;
  const done = new Promise<void>((resolveDone, reject) => {
    tar.on('data', (data: unknown) => {
      const c = data as Buffer;
      chunks.push(c);
      total += c.length;
      if (total >= expected) resolveDone();
    });
    tar.on('end', () => resolveDone());
    tar.on('error', reject);
  });
  for (const p of parts) {
    const header = { name: p.name, size: p.size, mode: 0o644, mtime, type: 'file' as const, uname: '', gname: '' };
    if (p.body) tar.entry(header, p.body);
    else tar.entry(header); // the disk: header only; its data is in place already
  }
  if (finalize) tar.finalize();
  await done;
  tar.destroy();
  const bytes = Buffer.concat(chunks);
  if (bytes.length !== expected) throw new Error(`internal error: the OVA ${finalize ? 'tail' : 'head'} is ${bytes.length} bytes, ${expected} were expected`);
  return bytes;
}

/** The head and the tail of the archive, once the disk's size and the descriptor and manifest are known. */
export async function encodeHeadAndTail(o: { names: { ovf: string; mf: string; vmdk: string }; ovf: Buffer; mf: Buffer; vmdkSize: number; mtime: Date; manifest: ManifestPosition }): Promise<{ head: Buffer; tail: Buffer }> {
  const ovf = { name: o.names.ovf, body: o.ovf, size: o.ovf.length };
  const mf = { name: o.names.mf, body: o.mf, size: o.mf.length };
  const disk = { name: o.names.vmdk, size: o.vmdkSize };
  const diskPad = Buffer.alloc(padTo512(o.vmdkSize) - o.vmdkSize);
  if (o.manifest === 'second') {
    const head = await encodeTar([ovf, mf, disk], o.mtime, headLength(o.ovf.length, o.mf.length, 'second'), false);
    return { head, tail: Buffer.concat([diskPad, Buffer.alloc(2 * BLOCK)]) };
  }
  const head = await encodeTar([ovf, disk], o.mtime, headLength(o.ovf.length, o.mf.length, 'end'), false);
  const mfAndEnd = await encodeTar([mf], o.mtime, BLOCK + padTo512(o.mf.length) + 2 * BLOCK, true);
  return { head, tail: Buffer.concat([diskPad, mfAndEnd]) };
}
