import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, truncateSync, utimesSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inflateSync } from 'node:zlib';
import { streamOptimizedVmdk, type VmdkStreamFacts, type VmdkStreamOptions } from '../../actions/lib/vmdk-stream.js';
import { GRAIN_BYTES, MARKER_EOS, MARKER_FOOTER, MARKER_GD, MARKER_GT, OVERHEAD_SECTORS, SECTOR, parseHeader } from '../../actions/lib/vmdk-stream-format.js';

let dir: string;
const MiB = 1024 * 1024;

/** A raw disk with random data, log-like text, explicitly written zeros and holes; not a whole number of grains. */
function makeRaw(path: string, bytes: number): void {
  execFileSync('truncate', ['-s', String(bytes), path]);
  const fd = openSync(path, 'r+');
  try {
    writeSync(fd, randomBytes(MiB), 0, MiB, 0); // random, incompressible
    const text = Buffer.from(Array.from({ length: 30000 }, (_, i) => `log line ${i}: fabric link ${i % 48} is up\n`).join(''));
    writeSync(fd, text, 0, text.length, 2 * MiB); // compressible, ends mid-grain
    writeSync(fd, Buffer.alloc(MiB), 0, MiB, 4 * MiB); // zeros written as data
    writeSync(fd, randomBytes(1000), 0, 1000, bytes - 1000); // the last, partial grain
  } finally {
    closeSync(fd);
  }
}

/** Runs the writer into a file; returns the file and what the writer reported. */
async function writeVmdk(o: Omit<VmdkStreamOptions, 'extentName' | 'workDir'> & { out: string }): Promise<Partial<VmdkStreamFacts>> {
  const facts: Partial<VmdkStreamFacts> = {};
  const fd = openSync(o.out, 'w');
  try {
    for await (const b of streamOptimizedVmdk({ ...o, extentName: 'disk1.vmdk', workDir: dir }, facts)) {
      expect(b.length % SECTOR).toBe(0);
      writeSync(fd, b);
    }
  } finally {
    closeSync(fd);
  }
  return facts;
}

interface Parsed {
  grains: { sector: number; lba: number; size: number }[];
  tables: { sector: number; entries: number[] }[];
  gd: { sector: number; entries: number[] };
  footerGd: bigint;
  kinds: string[];
}

/** Walks a streamOptimized VMDK marker by marker, as a streaming reader would. */
function parseStream(vmdk: Buffer): Parsed {
  const header = parseHeader(vmdk.subarray(0, SECTOR));
  expect(header.gdOffset).toBe(0xffffffffffffffffn);
  const tables: Parsed['tables'] = [];
  const grains: Parsed['grains'] = [];
  const kinds: string[] = [];
  let gd: Parsed['gd'] | undefined;
  let footerGd = 0n;
  let s = Number(header.overHead);
  for (;;) {
    const at = s * SECTOR;
    const val = Number(vmdk.readBigUInt64LE(at));
    const size = vmdk.readUInt32LE(at + 8);
    if (size > 0) {
      grains.push({ sector: s, lba: val, size });
      kinds.push('grain');
      s += Math.ceil((12 + size) / SECTOR);
      continue;
    }
    const type = vmdk.readUInt32LE(at + 12);
    const body = vmdk.subarray(at + SECTOR, at + SECTOR + val * SECTOR);
    const u32 = (n: number) => Array.from({ length: n }, (_, i) => body.readUInt32LE(i * 4));
    if (type === MARKER_GT) {
      tables.push({ sector: s + 1, entries: u32(512) });
      kinds.push('gt');
    } else if (type === MARKER_GD) {
      gd = { sector: s + 1, entries: u32(Math.ceil(Number(header.capacity) / 128 / 512)) };
      kinds.push('gd');
    } else if (type === MARKER_FOOTER) {
      footerGd = parseHeader(body).gdOffset;
      kinds.push('footer');
    } else if (type === MARKER_EOS) {
      kinds.push('eos');
      expect(at + SECTOR).toBe(vmdk.length);
      break;
    } else throw new Error(`unknown marker type ${type} at sector ${s}`);
    s += 1 + val;
  }
  return { grains, tables, gd: gd!, footerGd, kinds };
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'labforge-vmdk-stream-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('streamOptimized VMDK writer: round trips', () => {
  const raw = () => join(dir, 'mixed.raw');
  beforeAll(() => makeRaw(raw(), 7 * MiB + 3 * 512));

  it('writes a VMDK qemu-img reads back identical, checks clean and calls streamOptimized, reading a raw image directly', async () => {
    const out = join(dir, 'mixed.vmdk');
    const facts = await writeVmdk({ image: raw(), out, threads: 2 });
    expect(facts).toMatchObject({ mode: 'direct', virtualSize: 7 * MiB + 1536 });
    expect(execFileSync('qemu-img', ['compare', '-f', 'raw', '-F', 'vmdk', raw(), out], { encoding: 'utf8' })).toContain('Images are identical');
    expect(execFileSync('qemu-img', ['check', out], { encoding: 'utf8' })).toContain('No errors were found');
    const info = JSON.parse(execFileSync('qemu-img', ['info', '--output=json', out], { encoding: 'utf8' }));
    expect(info['virtual-size']).toBe(7 * MiB + 1536);
    expect(info['format-specific'].data['create-type']).toBe('streamOptimized');
  });

  it('lays out grains, then their grain table, then the directory, footer and end of stream, each entry pointing at its marker', () => {
    const vmdk = readFileSync(join(dir, 'mixed.vmdk'));
    const p = parseStream(vmdk);
    expect(p.kinds.slice(-4)).toEqual(['gt', 'gd', 'footer', 'eos']);
    expect(p.footerGd).toBe(BigInt(p.gd.sector));
    // Only grains with non-zero data: 16 random, 14 or 15 of text (1.26 MiB), none of the written zeros, the last one.
    const lbas = p.grains.map((g) => g.lba / 128);
    expect(lbas.slice(0, 16)).toEqual(Array.from({ length: 16 }, (_, i) => i));
    expect(lbas).not.toContain(64); // 4 MiB: zeros written as data are skipped
    expect(lbas[lbas.length - 1]).toBe(Math.floor((7 * MiB + 1536 - 1) / GRAIN_BYTES));
    expect(p.grains[0]!.sector).toBe(OVERHEAD_SECTORS);
    // The grain table maps each grain to its marker; the directory maps the table.
    expect(p.gd.entries).toEqual([p.tables[0]!.sector]);
    for (const g of p.grains) expect(p.tables[0]!.entries[g.lba / 128]).toBe(g.sector);
    expect(p.tables[0]!.entries.filter((e) => e !== 0).length).toBe(p.grains.length);
    // A grain's data is one zlib stream of a whole 64 KiB grain, the partial last grain padded with zeros.
    const last = p.grains[p.grains.length - 1]!;
    const data = inflateSync(vmdk.subarray(last.sector * SECTOR + 12, last.sector * SECTOR + 12 + last.size));
    expect(data.length).toBe(GRAIN_BYTES);
  });

  it('gives the same bytes for the same input, whatever the number of threads or batch size', async () => {
    const a = join(dir, 'a.vmdk');
    const b = join(dir, 'b.vmdk');
    await writeVmdk({ image: raw(), out: a, threads: 1, batchGrains: 1 });
    await writeVmdk({ image: raw(), out: b, threads: 3, batchGrains: 5 });
    const hash = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');
    expect(hash(a)).toBe(hash(join(dir, 'mixed.vmdk')));
    expect(hash(b)).toBe(hash(a));
  });

  it('compresses no worse than qemu-img at the same zlib level (within 1 %)', () => {
    const bare = join(dir, 'bare.vmdk');
    execFileSync('qemu-img', ['convert', '-f', 'raw', '-O', 'vmdk', '-o', 'subformat=streamOptimized', raw(), bare]);
    const ours = readFileSync(join(dir, 'mixed.vmdk')).length;
    expect(ours).toBeLessThanOrEqual(readFileSync(bare).length * 1.01);
    rmSync(bare);
  });

  it('reads an uncompressed qcow2 directly and a compressed one or one with a backing file through qemu', async () => {
    const plain = join(dir, 'plain.qcow2');
    const compressed = join(dir, 'compressed.qcow2');
    const overlay = join(dir, 'overlay.qcow2');
    execFileSync('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', raw(), plain]);
    execFileSync('qemu-img', ['convert', '-c', '-f', 'raw', '-O', 'qcow2', raw(), compressed]);
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', plain, '-F', 'qcow2', overlay]);
    execFileSync('qemu-io', ['-c', 'write -P 0x5a 3M 200k', '-c', 'write -z 0 64k', overlay]);
    for (const [image, mode] of [
      [plain, 'direct'],
      [compressed, 'converted'],
      [overlay, 'converted'],
    ] as const) {
      const out = `${image}.vmdk`;
      expect(await writeVmdk({ image, out, threads: 2 })).toMatchObject({ mode });
      expect(execFileSync('qemu-img', ['compare', '-F', 'vmdk', image, out], { encoding: 'utf8' })).toContain('Images are identical');
      expect(execFileSync('qemu-img', ['check', out], { encoding: 'utf8' })).toContain('No errors were found');
    }
    // The raw copy of a converted source is gone.
    expect(readdirSync(dir).filter((f) => f.endsWith('.raw'))).toEqual(['mixed.raw']);
  });

  it('writes a 100 GiB disk holding little data in seconds and without reading its holes', async () => {
    const big = join(dir, 'big.qcow2');
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', big, '100G']);
    execFileSync('qemu-io', ['-c', 'write -P 0x11 0 1M', '-c', 'write -P 0x22 50G 1M', '-c', `write -P 0x33 ${100 * 2 ** 30 - 65536} 64k`, big]);
    const out = join(dir, 'big.vmdk');
    const t0 = Date.now();
    const facts = await writeVmdk({ image: big, out, threads: 2 });
    expect(Date.now() - t0).toBeLessThan(30_000);
    expect(facts).toMatchObject({ mode: 'direct', virtualSize: 100 * 2 ** 30, dataBytes: 2 * MiB + 64 * 1024 });
    const p = parseStream(readFileSync(out));
    expect(p.grains.length).toBe(33);
    expect(p.tables.length).toBe(3); // only the tables holding data are written
    expect(p.gd.entries.filter((e) => e !== 0).length).toBe(3);
    expect(execFileSync('qemu-img', ['compare', '-F', 'vmdk', big, out], { encoding: 'utf8' })).toContain('Images are identical');
    rmSync(big);
    rmSync(out);
  }, 120_000);
});

describe('streamOptimized VMDK writer: faults', () => {
  it('fails naming the image when it is truncated while being read', async () => {
    const raw = join(dir, 'shrinks.raw');
    makeRaw(raw, 6 * MiB);
    const vmdk = streamOptimizedVmdk({ image: raw, extentName: 'x.vmdk', workDir: dir, threads: 1 });
    expect((await vmdk.next()).done).toBe(false); // the header: the image is mapped and open
    truncateSync(raw, 512 * 1024);
    const drain = async () => {
      for (let r = await vmdk.next(); !r.done; r = await vmdk.next());
    };
    await expect(drain()).rejects.toThrow(new RegExp(`${raw.replace(/[.]/g, '\\.')} (ended at byte|changed while it was being packed)`));
  });

  it('fails naming the image when it changes while being read', async () => {
    const raw = join(dir, 'touched.raw');
    makeRaw(raw, 6 * MiB);
    const vmdk = streamOptimizedVmdk({ image: raw, extentName: 'x.vmdk', workDir: dir, threads: 1 });
    await vmdk.next();
    utimesSync(raw, new Date(), new Date(Date.now() + 5000));
    const drain = async () => {
      for (let r = await vmdk.next(); !r.done; r = await vmdk.next());
    };
    await expect(drain()).rejects.toThrow(`${raw} changed while it was being packed`);
  });

  it('names the image qemu-img cannot read', async () => {
    const bad = join(dir, 'bad.qcow2');
    writeFileSync(bad, Buffer.concat([Buffer.from('QFI\xfb', 'latin1'), Buffer.alloc(4092, 0x5a)]));
    await expect(writeVmdk({ image: bad, out: join(dir, 'bad.vmdk') })).rejects.toThrow(/qemu-img info failed: .*bad\.qcow2/);
  });

  it('stops every worker thread and rejects when cancelled', async () => {
    const raw = join(dir, 'random.raw');
    execFileSync('dd', ['if=/dev/urandom', `of=${raw}`, 'bs=1M', 'count=48', 'status=none']);
    const threads = () => readdirSync('/proc/self/task').length;
    const before = threads();
    const controller = new AbortController();
    const vmdk = streamOptimizedVmdk({ image: raw, extentName: 'x.vmdk', workDir: dir, threads: 3, signal: controller.signal });
    await vmdk.next();
    await vmdk.next(); // a grain batch: the workers are running
    expect(threads()).toBeGreaterThanOrEqual(before + 3);
    controller.abort();
    await expect(vmdk.next()).rejects.toThrow(/cancelled/);
    for (let i = 0; i < 50 && threads() > before; i++) await new Promise((r) => setTimeout(r, 100));
    expect(threads()).toBeLessThanOrEqual(before);
  });
});
