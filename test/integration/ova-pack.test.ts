import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, openSync, readSync, closeSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { extract } from 'tar-stream';
import { XMLParser } from 'fast-xml-parser';
import { packOva, readPackOvaOptions, manifestText, OvaPackError, type PackOvaResult } from '../../actions/lib/ova-pack.js';
import { ENVELOPE_ORDER, GENERIC_LINUX_64, PRODUCT_SECTION_ORDER, RASD_ORDER, VIRTUAL_SYSTEM_ORDER, VMDK_STREAM_OPTIMIZED_FORMAT, type GuestOs } from '../../actions/lib/ovf-descriptor.js';
import { readOvaProperties, readOvfDescriptor } from '../../actions/lib/ova-read.js';
import { detectBuildType } from '../../actions/lib/build-decision.js';
import { InputError, inputsFrom } from '../../actions/lib/inputs.js';
import { runCli } from '../support/run-cli.js';
import { writeOvaFixture } from '../support/ova-fixture.js';
import { entryRange, vmdkInOva } from '../support/ova-entries.js';
import { makeDataImage } from '../support/disk-image.js';

let dir: string;
let image: string;
const VIRTUAL = 96 * 1024 * 1024;
const UBUNTU: GuestOs = { cimId: 94, vmwareOsType: 'ubuntu64Guest', description: 'Ubuntu 24.04 LTS (64-bit)' };
/** What every packOva call below has in common: the appliance and the OS and resources it declares. */
const HEDGEHOG = { appliance: 'hedgehog-lab', os: UBUNTU, cpus: 4, memoryMiB: 8192 };

/** The OVF of an OVA, parsed: the OS section and the CPU and memory items. */
async function ovfFacts(ova: string): Promise<{ osId: string; osType: string; osDescription: string; cpus: number; memoryMiB: number; product: string }> {
  const { xml } = await readOvfDescriptor(ova);
  const doc = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '@_' }).parse(xml) as Record<string, Record<string, Record<string, unknown>>>;
  const vs = doc['Envelope']!['VirtualSystem']!;
  const os = vs['OperatingSystemSection'] as Record<string, string>;
  const items = (vs['VirtualHardwareSection'] as Record<string, Record<string, unknown>[]>)['Item']!;
  const quantity = (t: number) => Number(items.find((i) => Number(i['rasd:ResourceType']) === t)!['rasd:VirtualQuantity']);
  return { osId: String(os['@_ovf:id']), osType: os['@_vmw:osType']!, osDescription: os['Description']!, cpus: quantity(3), memoryMiB: quantity(4), product: String((vs['ProductSection'] as Record<string, unknown>)['Product']) };
}


interface Entry {
  name: string;
  size: number;
  sha256: string;
  body?: Buffer;
  headerMagic?: string;
}

/** Streams an OVA with tar-stream: entries in order with their sizes and SHA-256 (small bodies kept). */
async function readEntries(ova: string): Promise<Entry[]> {
  const entries: Entry[] = [];
  const tar = extract();
  const done = new Promise<void>((resolve, reject) => {
    tar.on('entry', (header, stream, next) => {
      const hash = createHash('sha256');
      const chunks: Buffer[] = [];
      stream.on('data', (data: unknown) => {
        const c = data as Buffer;
        hash.update(c);
        if ((header.size ?? 0) < 1 << 20) chunks.push(c);
      });
      stream.on('end', () => {
        entries.push({ name: header.name, size: header.size ?? 0, sha256: hash.digest('hex'), body: chunks.length ? Buffer.concat(chunks) : undefined });
        next();
      });
    });
    tar.on('finish', resolve);
    tar.on('error', reject);
  });
  createReadStream(ova).pipe(tar);
  await done;
  return entries;
}

/** The `magic` and `version` fields of every tar header (offsets 257..265), walked by header sizes. */
function headerMagics(ova: string, count: number): string[] {
  const fd = openSync(ova, 'r');
  const magics: string[] = [];
  try {
    let offset = 0;
    for (let i = 0; i < count; i++) {
      const h = Buffer.alloc(512);
      readSync(fd, h, 0, 512, offset);
      magics.push(h.subarray(257, 265).toString('latin1'));
      const size = parseInt(h.subarray(124, 136).toString('latin1').replace(/\0.*$/, '').trim(), 8);
      offset += 512 + Math.ceil(size / 512) * 512;
    }
  } finally {
    closeSync(fd);
  }
  return magics;
}

const childNames = (node: Record<string, unknown>) => Object.keys(node).filter((k) => !k.startsWith('@_') && k !== '#text');
/** Asserts that `actual` lists elements in an order consistent with the schema order `order`. */
function expectSchemaOrder(actual: string[], order: readonly string[]): void {
  const positions = actual.map((n) => order.indexOf(n));
  expect(positions).not.toContain(-1);
  expect([...positions].sort((a, b) => a - b)).toEqual(positions);
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'labforge-ova-pack-'));
  image = join(dir, 'guest.qcow2');
  makeDataImage(image, { virtualBytes: VIRTUAL, randomMiB: 16, textLines: 60000 });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('packOva: a correct OVA in one pass', () => {
  let result: PackOvaResult;
  let entries: Entry[];
  const out = () => join(dir, 'hedgehog-lab-prewarmed-1.4.0.ova');

  beforeAll(async () => {
    result = await packOva({ image, out: out(), appliance: 'hedgehog-lab', os: UBUNTU, buildType: 'prewarmed', version: '1.4.0', gitSha: 'abc1234', buildDate: new Date('2025-03-01T12:00:00Z'), cpus: 2, memoryMiB: 4096 });
    entries = await readEntries(out());
  }, 120_000);

  it('writes the descriptor first, then the manifest, then the disk, as ustar entries', () => {
    expect(entries.map((e) => e.name)).toEqual(['hedgehog-lab-prewarmed-1.4.0.ovf', 'hedgehog-lab-prewarmed-1.4.0.mf', 'hedgehog-lab-prewarmed-1.4.0-disk1.vmdk']);
    expect(headerMagics(out(), 3)).toEqual(['ustar\u000000', 'ustar\u000000', 'ustar\u000000']);
    // GNU tar agrees on the listing.
    const listing = execFileSync('tar', ['tf', out()], { encoding: 'utf8' }).trim().split('\n');
    expect(listing).toEqual(entries.map((e) => e.name));
  });

  it('lists in the manifest the SHA-256 of every other entry, as it is in the archive', () => {
    const [ovf, mf, disk] = entries;
    expect(mf!.body!.toString()).toBe(manifestText([ovf!, disk!]));
    expect(result.entries.map((e) => [e.name, e.size, e.sha256])).toEqual(entries.map((e) => [e.name, e.size, e.sha256]));
  });

  it('writes an .ova.sha256 that sha256sum -c accepts', () => {
    expect(readFileSync(result.sha256File, 'utf8')).toBe(`${result.sha256}  hedgehog-lab-prewarmed-1.4.0.ova\n`);
    const check = spawnSync('sha256sum', ['-c', result.sha256File], { cwd: dir, encoding: 'utf8' });
    expect(check.stdout).toContain('hedgehog-lab-prewarmed-1.4.0.ova: OK');
    expect(check.status).toBe(0);
    expect(result.size).toBe(readFileSync(out()).length);
  });

  it('holds a streamOptimized VMDK with the image’s virtual size and the same data', () => {
    const vmdk = join(dir, 'extracted.vmdk');
    const disk = entries[2]!;
    execFileSync('bash', ['-c', `tar -xOf "$1" "$2" > "$3"`, '_', out(), disk.name, vmdk]);
    const info = JSON.parse(execFileSync('qemu-img', ['info', '--output=json', vmdk], { encoding: 'utf8' }));
    expect(info.format).toBe('vmdk');
    expect(info['virtual-size']).toBe(VIRTUAL);
    expect(info['format-specific'].data['create-type']).toBe('streamOptimized');
    expect(execFileSync('qemu-img', ['compare', image, vmdk], { encoding: 'utf8' })).toContain('Images are identical');
    rmSync(vmdk);
  });

  it('describes the disk, hardware and build in an OVF 1.0 envelope in schema order', () => {
    const xml = entries[0]!.body!.toString();
    const parser = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '@_', preserveOrder: false });
    const doc = parser.parse(xml) as Record<string, Record<string, unknown>>;
    const env = doc['Envelope']!;
    expect(env['@_xmlns']).toBe('http://schemas.dmtf.org/ovf/envelope/1');
    expect(env['@_ovf:version']).toBe('1.0');
    expect(childNames(env)).toEqual([...ENVELOPE_ORDER]);
    const file = (env['References'] as Record<string, Record<string, string>>)['File']!;
    expect(Number(file['@_ovf:size'])).toBe(entries[2]!.size);
    expect(file['@_ovf:href']).toBe(entries[2]!.name);
    const disk = (env['DiskSection'] as Record<string, Record<string, string>>)['Disk']!;
    expect(Number(disk['@_ovf:capacity'])).toBe(VIRTUAL);
    expect(disk['@_ovf:format']).toBe(VMDK_STREAM_OPTIMIZED_FORMAT);
    expect(Number(disk['@_ovf:populatedSize'])).toBe(result.populatedSize);
    expect(result.populatedSize).toBeGreaterThanOrEqual(16 * 1024 * 1024);
    expect(result.populatedSize).toBeLessThan(VIRTUAL);
    const vs = env['VirtualSystem'] as Record<string, unknown>;
    expectSchemaOrder(childNames(vs), VIRTUAL_SYSTEM_ORDER);
    expectSchemaOrder(childNames(vs['ProductSection'] as Record<string, unknown>), PRODUCT_SECTION_ORDER);
    const items = (vs['VirtualHardwareSection'] as Record<string, Record<string, unknown>[]>)['Item']!;
    for (const it of items) expectSchemaOrder(childNames(it).map((n) => n.replace(/^rasd:/, '')), RASD_ORDER);
    const byType = (t: number) => items.find((i) => Number(i['rasd:ResourceType']) === t)!;
    expect(Number(byType(3)['rasd:VirtualQuantity'])).toBe(2);
    expect(Number(byType(4)['rasd:VirtualQuantity'])).toBe(4096);
    expect(byType(10)['rasd:ResourceSubType']).toBe('E1000');
    expect(byType(17)['rasd:HostResource']).toBe('ovf:/disk/vmdisk1');
    expect((vs['OperatingSystemSection'] as Record<string, string>)['@_ovf:id']).toBe('94');
    expect((vs['OperatingSystemSection'] as Record<string, string>)['@_vmw:osType']).toBe('ubuntu64Guest');
  });

  it('carries the build in ProductSection class labforge, which detect-build-type reads back', async () => {
    expect(await readOvaProperties(out())).toEqual({ appliance: 'hedgehog-lab', buildType: 'prewarmed', version: '1.4.0', buildDate: '2025-03-01T12:00:00Z', gitSha: 'abc1234' });
    expect(result.properties.appliance).toBe('hedgehog-lab');
    const decision = await detectBuildType({ ova: out() });
    expect(decision).toMatchObject({ buildType: 'prewarmed', source: 'ova', version: '1.4.0', versionSource: 'ova' });
  });

  it('reads an OVA packed before OVAs named their appliance as hedgehog-lab', async () => {
    const sub = mkdtempSync(join(dir, 'legacy-'));
    const legacy = await writeOvaFixture(join(sub, 'old.ova'), { properties: { buildType: 'standard', version: '1.0.0' } });
    expect(await readOvaProperties(legacy)).toEqual({ appliance: 'hedgehog-lab', buildType: 'standard', version: '1.0.0' });
    const demo = await writeOvaFixture(join(sub, 'demo.ova'), { properties: { appliance: 'demo-lab', buildType: 'standard', version: '1.0.0' } });
    expect((await readOvaProperties(demo)).appliance).toBe('demo-lab');
    rmSync(sub, { recursive: true, force: true });
  });

  it('leaves nothing behind but the OVA and its .sha256', () => {
    expect(readdirSync(dir).sort()).toEqual(['guest.qcow2', 'hedgehog-lab-prewarmed-1.4.0.ova', 'hedgehog-lab-prewarmed-1.4.0.ova.sha256']);
  });
});

describe('packOva: keeping intermediates, failures and cancellation', () => {
  it('keeps the work directory when asked', async () => {
    const sub = mkdtempSync(join(dir, 'keep-'));
    const r = await packOva({ image, out: join(sub, 'k.ova'), ...HEDGEHOG, appliance: 'demo-lab', buildType: 'standard', version: '2.0.0', keepIntermediates: true });
    expect(r.intermediates).toBeDefined();
    expect(readdirSync(r.intermediates!).sort()).toEqual(['demo-lab-standard-2.0.0.mf', 'demo-lab-standard-2.0.0.ovf']);
    // qemu-img's writer starts from an empty VMDK made by qemu-img create: kept too.
    const q = await packOva({ image, out: join(sub, 'q.ova'), ...HEDGEHOG, appliance: 'demo-lab', buildType: 'standard', version: '2.0.0', keepIntermediates: true, vmdkWriter: 'qemu-img' });
    expect(readdirSync(q.intermediates!).sort()).toEqual(['demo-lab-standard-2.0.0-disk1.vmdk', 'demo-lab-standard-2.0.0.mf', 'demo-lab-standard-2.0.0.ovf']);
    rmSync(sub, { recursive: true, force: true });
  }, 120_000);

  it('names the input when the image does not exist', async () => {
    await expect(packOva({ image: join(dir, 'nope.qcow2'), out: join(dir, 'x.ova'), ...HEDGEHOG, buildType: 'standard', version: '1.0.0' })).rejects.toMatchObject({ name: 'InputError', input: 'image' });
  });

  it('reports qemu-img’s own words for a broken image and leaves no partial file', async () => {
    const sub = mkdtempSync(join(dir, 'broken-'));
    const broken = join(sub, 'broken.qcow2');
    // A qcow2 magic followed by garbage: qemu-img refuses to open it.
    writeFileSync(broken, Buffer.concat([Buffer.from('QFI\xfb', 'latin1'), Buffer.alloc(4092, 0x5a)]));
    const err = await packOva({ image: broken, out: join(sub, 'b.ova'), ...HEDGEHOG, buildType: 'standard', version: '1.0.0' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OvaPackError);
    expect((err as Error).message).toMatch(/qemu-img/);
    expect(readdirSync(sub)).toEqual(['broken.qcow2']);
    rmSync(sub, { recursive: true, force: true });
  });

  it('stops qemu-img and removes the partial OVA when cancelled', async () => {
    const sub = mkdtempSync(join(dir, 'cancel-'));
    const big = join(sub, 'big.qcow2');
    makeDataImage(big, { virtualBytes: 512 * 1024 * 1024, randomMiB: 384, textLines: 60000 });
    const controller = new AbortController();
    const lines: string[] = [];
    const pending = packOva({ image: big, out: join(sub, 'c.ova'), ...HEDGEHOG, buildType: 'standard', version: '1.0.0', signal: controller.signal, log: (l) => lines.push(l), progressIntervalMs: 100, vmdkWriter: 'qemu-img' });
    // Cancel once qemu-img is converting.
    for (let i = 0; i < 200 && !lines.some((l) => l.startsWith('convert:')); i++) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 300));
    const t0 = Date.now();
    controller.abort();
    await expect(pending).rejects.toThrow(/cancelled/);
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(readdirSync(sub)).toEqual(['big.qcow2']);
    const ps = spawnSync('pgrep', ['-f', `qemu-img convert.*${sub}`], { encoding: 'utf8' });
    expect(ps.stdout.trim()).toBe('');
    rmSync(sub, { recursive: true, force: true });
  }, 120_000);
});

/** Verifies the manifest of an extracted OVA with sha256sum (its `SHA256(f)= h` lines rewritten as `h  f`). */
function verifyManifest(ova: string, mfName: string): string {
  const x = mkdtempSync(join(dir, 'x-'));
  execFileSync('tar', ['-C', x, '-xf', ova]);
  const lines = readFileSync(join(x, mfName), 'utf8').replace(/^SHA256\((.+)\)= ([0-9a-f]{64})$/gm, '$2  $1');
  writeFileSync(join(x, 'sums'), lines);
  const out = execFileSync('sha256sum', ['-c', 'sums'], { cwd: x, encoding: 'utf8' });
  rmSync(x, { recursive: true, force: true });
  return out;
}


describe('packOva: the stream writer (default) and qemu-img compared', () => {
  const packed: Record<string, PackOvaResult> = {};
  let sub: string;
  beforeAll(async () => {
    sub = mkdtempSync(join(dir, 'writers-'));
    const common = { image, ...HEDGEHOG, buildType: 'standard' as const, version: '1.0.0', gitSha: 'abc1234', buildDate: new Date('2025-03-01T12:00:00Z') };
    packed.stream = await packOva({ ...common, out: join(sub, 'stream.ova'), packThreads: 2 });
    packed.qemu = await packOva({ ...common, out: join(sub, 'qemu.ova'), vmdkWriter: 'qemu-img' });
    packed.end = await packOva({ ...common, out: join(sub, 'end.ova'), manifestPosition: 'end', packThreads: 2 });
  }, 180_000);
  afterAll(() => rmSync(sub, { recursive: true, force: true }));

  it('both writers give an OVA whose disk qemu-img reads identical to the image, in place and clean', () => {
    expect(packed.stream!.writer).toBe('stream');
    expect(packed.stream!.readMode).toBe('direct');
    expect(packed.qemu!.writer).toBe('qemu-img');
    for (const r of [packed.stream!, packed.qemu!]) {
      const disk = entryRange(r.ova, r.entries[2].name);
      expect(disk.size).toBe(r.entries[2].size);
      expect(execFileSync('qemu-img', ['compare', image, vmdkInOva(r.ova, disk)], { encoding: 'utf8' })).toContain('Images are identical');
      expect(execFileSync('qemu-img', ['check', vmdkInOva(r.ova, disk)], { encoding: 'utf8' })).toContain('No errors were found');
      const info = JSON.parse(execFileSync('qemu-img', ['info', '--output=json', vmdkInOva(r.ova, disk)], { encoding: 'utf8' }));
      expect(info['virtual-size']).toBe(VIRTUAL);
      expect(info['format-specific'].data['create-type']).toBe('streamOptimized');
      expect(verifyManifest(r.ova, r.entries[1].name)).toMatch(/^.*\.ovf: OK\n.*-disk1\.vmdk: OK\n$/);
    }
    // The stream writer compresses as well as qemu-img (the same zlib level), and its OVA is otherwise the same archive.
    expect(packed.stream!.entries[2].size).toBeLessThanOrEqual(packed.qemu!.entries[2].size * 1.01);
    expect(packed.stream!.entries.map((e) => e.name)).toEqual(packed.qemu!.entries.map((e) => e.name));
    expect(packed.stream!.entries[0].size).toBe(packed.qemu!.entries[0].size);
  });

  it('packs the same image to the same bytes twice', async () => {
    const again = await packOva({ image, ...HEDGEHOG, buildType: 'standard', version: '1.0.0', gitSha: 'abc1234', buildDate: new Date('2025-03-01T12:00:00Z'), out: join(sub, 'again.ova'), packThreads: 1 });
    expect(again.sha256).toBe(packed.stream!.sha256);
  }, 60_000);

  it('puts the manifest last when asked: OVF, VMDK, MF as ustar entries, still verified', async () => {
    const r = packed.end!;
    expect(r.entries.map((e) => e.name)).toEqual(['hedgehog-lab-standard-1.0.0.ovf', 'hedgehog-lab-standard-1.0.0-disk1.vmdk', 'hedgehog-lab-standard-1.0.0.mf']);
    expect(execFileSync('tar', ['tf', r.ova], { encoding: 'utf8' }).trim().split('\n')).toEqual(r.entries.map((e) => e.name));
    expect(headerMagics(r.ova, 3)).toEqual(['ustar\u000000', 'ustar\u000000', 'ustar\u000000']);
    const entries = await readEntries(r.ova);
    expect(entries.map((e) => [e.name, e.size, e.sha256])).toEqual(r.entries.map((e) => [e.name, e.size, e.sha256]));
    expect(verifyManifest(r.ova, r.entries[2].name)).toMatch(/\.ovf: OK\n.*-disk1\.vmdk: OK\n$/);
    expect(spawnSync('sha256sum', ['-c', r.sha256File], { cwd: sub }).status).toBe(0);
    expect(r.entries[1].sha256).toBe(packed.stream!.entries[2].sha256); // the same VMDK bytes
    expect(await readOvaProperties(r.ova)).toMatchObject({ buildType: 'standard', version: '1.0.0' });
    const verify = await runCli(['verify', r.ova]);
    expect(verify.stderr + verify.stdout).not.toMatch(/does not match|has no/);
    expect(verify.code).toBe(0);
  });

  it('hands a part sink every body byte in order, then the head, tail, size and SHA-256 of the finished OVA', async () => {
    for (const vmdkWriter of ['stream', 'qemu-img'] as const) {
      const bodies: Buffer[] = [];
      let next = -1;
      let final: { head: Buffer; tail: Buffer; size: number; sha256: string } | undefined;
      const calls: string[] = [];
      const out = join(sub, `sink-${vmdkWriter}.ova`);
      const r = await packOva({
        image, ...HEDGEHOG, buildType: 'standard', version: '1.0.0', out, vmdkWriter, packThreads: 2,
        partSink: {
          body: async (offset, bytes) => {
            if (next === -1) next = offset;
            expect(offset).toBe(next);
            next += bytes.length;
            bodies.push(Buffer.from(bytes));
            calls.push('body');
            await new Promise((res) => setImmediate(res));
          },
          finish: async (f) => {
            calls.push('finish');
            expect(existsSync(out)).toBe(false); // before the rename
            final = f;
          },
          abort: async () => void calls.push('abort'),
        },
      });
      expect(calls.filter((c) => c !== 'body')).toEqual(['finish']);
      expect(calls.length).toBeGreaterThan(2);
      const rebuilt = Buffer.concat([final!.head, ...bodies, final!.tail]);
      expect(bodies.length > 0 && final!.head.length).toBe(entryRange(out, r.entries[2].name).offset);
      expect(rebuilt.length).toBe(final!.size);
      expect(final!.size).toBe(r.size);
      expect(rebuilt.equals(readFileSync(out))).toBe(true);
      expect(createHash('sha256').update(rebuilt).digest('hex')).toBe(final!.sha256);
      expect(final!.sha256).toBe(r.sha256);
    }
  }, 120_000);

  it('aborts the part sink and removes the partial OVA when the sink fails', async () => {
    const out = join(sub, 'sink-fails.ova');
    const calls: string[] = [];
    let n = 0;
    const err = await packOva({
      image, ...HEDGEHOG, buildType: 'standard', version: '1.0.0', out, packThreads: 2,
      partSink: {
        body: async () => {
          if (++n === 3) throw new Error('the bucket said no');
        },
        finish: async () => void calls.push('finish'),
        abort: async (e) => void calls.push(`abort: ${e.message}`),
      },
    }).then(
      () => new Error('packed despite the sink failing'),
      (e: unknown) => e as Error,
    );
    expect(err).toBeInstanceOf(OvaPackError);
    expect(err.message).toMatch(/the bucket said no/);
    expect(calls).toEqual(['abort: the bucket said no']);
    expect(readdirSync(sub).filter((f) => f.startsWith('sink-fails') || f.startsWith('.labforge-pack-'))).toEqual([]);
  });

  it('labforge pack-ova: SIGTERM mid-pack stops the workers and leaves no partial OVA', async () => {
    const cli = mkdtempSync(join(dir, 'sigterm-'));
    const raw = join(cli, 'random.raw');
    execFileSync('dd', ['if=/dev/urandom', `of=${raw}`, 'bs=1M', 'count=192', 'status=none']);
    const child = spawn(process.execPath, ['bin/labforge', 'pack-ova', '--image', raw, '--out', join(cli, 's.ova'), '--version', '1.0.0', '--git-sha', 'deadbeef', '--pack-threads', '2'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((res) => child.on('close', (code) => res(code)));
    for (let i = 0; i < 400 && !/^pack: /m.test(stderr); i++) await new Promise((r) => setTimeout(r, 50));
    expect(stderr).toMatch(/^pack: /m);
    expect(readdirSync(cli).some((f) => f.endsWith('.partial'))).toBe(true);
    const t0 = Date.now();
    child.kill('SIGTERM');
    const code = await exited;
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(code).toBe(1);
    expect(stderr).toMatch(/cancelled; the partial OVA was removed/);
    expect(readdirSync(cli)).toEqual(['random.raw']);
    rmSync(cli, { recursive: true, force: true });
  }, 60_000);

  it('labforge pack-ova packs a 100 GiB disk holding 2 MiB in seconds, in flat memory', async () => {
    const cli = mkdtempSync(join(dir, 'sparse-'));
    const big = join(cli, 'big.qcow2');
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', big, '100G']);
    execFileSync('qemu-io', ['-c', 'write -P 0x11 0 1M', '-c', 'write -P 0x22 77G 1M', big]);
    const run = spawnSync('/usr/bin/time', ['-f', 'maxrss=%M', process.execPath, 'bin/labforge', 'pack-ova', '--image', big, '--out', join(cli, 'big.ova'), '--version', '1.0.0', '--git-sha', 'deadbeef'], { encoding: 'utf8' });
    expect(run.status).toBe(0);
    const r = JSON.parse(run.stdout) as PackOvaResult;
    expect(r.virtualSize).toBe(100 * 2 ** 30);
    expect(r.timings.totalSeconds).toBeLessThan(30);
    expect(Number(/maxrss=(\d+)/.exec(run.stderr)![1]) / 1024).toBeLessThan(400); // MiB: Node, the workers and a few batches
    const disk = entryRange(r.ova, r.entries[2].name);
    expect(execFileSync('qemu-img', ['compare', big, vmdkInOva(r.ova, disk)], { encoding: 'utf8' })).toContain('Images are identical');
    rmSync(cli, { recursive: true, force: true });
  }, 120_000);
});

describe('pack-ova inputs', () => {
  // The image must exist and hold something (checked before the appliance is read); its content is not read here.
  const img = (): string => {
    const p = join(dir, 'a.qcow2');
    if (!existsSync(p)) writeFileSync(p, 'not empty');
    return p;
  };
  it('names the image when it does not exist or is empty', async () => {
    await expect(readPackOvaOptions(inputsFrom({ image: join(dir, 'missing.qcow2'), version: '1.0.0' }))).rejects.toThrow(/^image: .*missing\.qcow2 does not exist/);
    writeFileSync(join(dir, 'empty.qcow2'), '');
    await expect(readPackOvaOptions(inputsFrom({ image: join(dir, 'empty.qcow2'), version: '1.0.0' }))).rejects.toThrow(/^image: .*empty\.qcow2 is empty \(0 bytes\)/);
  });
  it('rejects a version that is not semver, naming the input', async () => {
    await expect(readPackOvaOptions(inputsFrom({ image: img(), version: 'latest' }))).rejects.toThrow(InputError);
    await expect(readPackOvaOptions(inputsFrom({ image: img(), version: 'latest' }))).rejects.toThrow(/^version: 'latest' is not a semantic version/);
  });
  it('reads the writer, its threads and the manifest position, naming a bad one', async () => {
    expect(await readPackOvaOptions(inputsFrom({ image: img(), version: '1.0.0' }))).toMatchObject({ vmdkWriter: 'stream', manifestPosition: 'second', packThreads: availableParallelism() });
    expect(await readPackOvaOptions(inputsFrom({ image: img(), version: '1.0.0', 'vmdk-writer': 'qemu-img', 'pack-threads': '16', 'manifest-position': 'end' }))).toMatchObject({ vmdkWriter: 'qemu-img', packThreads: 16, manifestPosition: 'end' });
    await expect(readPackOvaOptions(inputsFrom({ image: img(), version: '1.0.0', 'vmdk-writer': 'ovftool' }))).rejects.toThrow(/^vmdk-writer: 'ovftool' is not one of stream, qemu-img \(use one of: stream, qemu-img\)$/);
    await expect(readPackOvaOptions(inputsFrom({ image: img(), version: '1.0.0', 'pack-threads': '0' }))).rejects.toThrow(/^pack-threads: 0 is out of range \(use a value from 1 to 256\)$/);
    await expect(readPackOvaOptions(inputsFrom({ image: img(), version: '1.0.0', 'manifest-position': 'first' }))).rejects.toThrow(/^manifest-position: 'first' is not one of second, end/);
  });
  it('rejects an unknown build type and an output that is not .ova', async () => {
    await expect(readPackOvaOptions(inputsFrom({ image: img(), version: '1.0.0', 'build-type': 'warm' }))).rejects.toThrow(/^build-type:/);
    await expect(readPackOvaOptions(inputsFrom({ image: img(), version: '1.0.0', out: 'x.tar' }))).rejects.toThrow(/^out:/);
  });
  it("without an appliance: named hedgehog-lab, the flags' sizes, and a generic Linux rather than a guessed distribution", async () => {
    expect(await readPackOvaOptions(inputsFrom({ image: img(), version: 'v1.2.0', 'build-type': 'prewarmed' }))).toMatchObject({
      appliance: 'hedgehog-lab',
      out: 'hedgehog-lab-prewarmed-1.2.0.ova',
      version: '1.2.0',
      cpus: 4,
      memoryMiB: 8192,
      os: GENERIC_LINUX_64,
    });
    expect(await readPackOvaOptions(inputsFrom({ image: img(), version: '1.0.0', cpus: '6', 'memory-mib': '2048' }))).toMatchObject({ cpus: 6, memoryMiB: 2048 });
    await expect(readPackOvaOptions(inputsFrom({ image: img(), version: '1.0.0', profile: 'tiny' }))).rejects.toThrow(/^profile: needs an appliance/);
  });
  it("with an appliance: its name, its OS and its profile's sizes, with overrides", async () => {
    expect(await readPackOvaOptions(inputsFrom({ image: img(), version: '1.0.0', appliance: 'packer/demo-lab' }))).toMatchObject({
      appliance: 'demo-lab',
      out: 'demo-lab-standard-1.0.0.ova',
      os: { cimId: 96, vmwareOsType: 'debian11_64Guest' },
      cpus: 2,
      memoryMiB: 1024,
    });
    expect(await readPackOvaOptions(inputsFrom({ image: img(), version: '1.0.0', appliance: 'packer/hedgehog-lab', cpus: '12', out: 'mine.ova' }))).toMatchObject({
      appliance: 'hedgehog-lab',
      out: 'mine.ova',
      os: { cimId: 94, vmwareOsType: 'ubuntu64Guest' },
      cpus: 12,
      memoryMiB: 43520,
    });
  });
  it('names the input for a bad appliance, profile or size', async () => {
    await expect(readPackOvaOptions(inputsFrom({ image: img(), version: '1.0.0', appliance: join(dir, 'nowhere') }))).rejects.toThrow(/^appliance: .*appliance\.yml does not exist/);
    await expect(readPackOvaOptions(inputsFrom({ image: img(), version: '1.0.0', appliance: 'packer/demo-lab', profile: 'huge' }))).rejects.toThrow(/^profile: 'huge' is not a resource profile of demo-lab \(use one of: tiny\)/);
    await expect(readPackOvaOptions(inputsFrom({ image: img(), version: '1.0.0', appliance: 'packer/hedgehog-lab', 'memory-mib': '4096' }))).rejects.toThrow(/^memory-mib: 4096 is below the minimum 23552 of hedgehog-lab/);
    await expect(readPackOvaOptions(inputsFrom({ image: img(), version: '1.0.0', appliance: 'packer/demo-lab', cpus: 'two' }))).rejects.toThrow(/^cpus: 'two' is not a whole number/);
  });
});

describe('labforge pack-ova', () => {
  it('packs an image and prints the result as JSON', async () => {
    const sub = mkdtempSync(join(dir, 'cli-'));
    const run = await runCli(['pack-ova', '--image', image, '--out', join(sub, 'cli.ova'), '--build-type', 'standard', '--version', '3.1.4', '--git-sha', 'deadbeef']);
    expect(run.stderr).toContain('convert:');
    expect(run.code).toBe(0);
    const printed = JSON.parse(run.stdout) as PackOvaResult;
    expect(printed.properties).toMatchObject({ appliance: 'hedgehog-lab', buildType: 'standard', version: '3.1.4', gitSha: 'deadbeef' });
    expect(run.stderr).toContain('note: no --appliance: the OVF declares Linux (64-bit) with 4 vCPU(s) and 8192 MiB');
    expect(await ovfFacts(join(sub, 'cli.ova'))).toMatchObject({ osId: '101', osType: 'otherLinux64Guest', cpus: 4, memoryMiB: 8192 });
    expect(existsSync(join(sub, 'cli.ova.sha256'))).toBe(true);
    rmSync(sub, { recursive: true, force: true });
  }, 120_000);

  it("with --appliance packer/hedgehog-lab the OVF says Ubuntu and the default topology's 48 vCPUs and 42.5 GiB", async () => {
    const sub = mkdtempSync(join(dir, 'cli-hh-'));
    const small = join(sub, 'small.qcow2');
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', small, '64M']);
    const ova = join(sub, 'hh.ova');
    const run = await runCli(['pack-ova', '--appliance', 'packer/hedgehog-lab', '--image', small, '--out', ova, '--build-type', 'standard', '--version', '1.0.0', '--git-sha', 'deadbeef']);
    expect(run.stderr).not.toContain('note: no --appliance');
    expect(run.code).toBe(0);
    expect(await ovfFacts(ova)).toEqual({ osId: '94', osType: 'ubuntu64Guest', osDescription: 'Ubuntu 24.04 LTS (64-bit)', cpus: 48, memoryMiB: 43520, product: 'hedgehog-lab' });
    expect(await readOvaProperties(ova)).toMatchObject({ appliance: 'hedgehog-lab', buildType: 'standard', version: '1.0.0' });
    expect(execFileSync('tar', ['tf', ova], { encoding: 'utf8' }).trim().split('\n')).toEqual(['hedgehog-lab-standard-1.0.0.ovf', 'hedgehog-lab-standard-1.0.0.mf', 'hedgehog-lab-standard-1.0.0-disk1.vmdk']);
    rmSync(sub, { recursive: true, force: true });
  }, 120_000);

  it('names the demo appliance in the default output and declares its Debian, a --profile and --cpus of its own', async () => {
    const sub = mkdtempSync(join(dir, 'cli-demo-'));
    const small = join(sub, 'small.qcow2');
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', small, '64M']);
    const run = await runCli(['pack-ova', '--appliance', join(process.cwd(), 'packer/demo-lab'), '--profile', 'tiny', '--cpus', '3', '--image', small, '--version', '0.2.0', '--git-sha', 'deadbeef'], { cwd: sub });
    expect(run.code).toBe(0);
    const ova = join(sub, 'demo-lab-standard-0.2.0.ova');
    expect(await ovfFacts(ova)).toMatchObject({ osId: '96', osType: 'debian11_64Guest', cpus: 3, memoryMiB: 1024, product: 'demo-lab' });
    expect((await readOvaProperties(ova)).appliance).toBe('demo-lab');
    const bad = await runCli(['pack-ova', '--appliance', 'packer/demo-lab', '--profile', 'huge', '--image', small, '--version', '0.2.0']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/profile: 'huge' is not a resource profile of demo-lab/);
    rmSync(sub, { recursive: true, force: true });
  }, 120_000);

  it('refuses an --image that is not a disk image, before anything is written', async () => {
    const sub = mkdtempSync(join(dir, 'not-a-disk-'));
    const text = join(sub, 'notes.txt');
    writeFileSync(text, 'hi\n');
    const run = await runCli(['pack-ova', '--image', text, '--out', join(sub, 'x.ova'), '--version', '1.0.0']);
    expect(run.code).toBe(2);
    expect(run.stderr.split('\n').filter((l) => l.startsWith('labforge pack-ova:')).join('\n') + '\n').toBe(
      `labforge pack-ova: image: ${text} is not a disk image: qemu-img finds no image format in it, and as a raw disk its 3 bytes are not a whole number of 512-byte sectors (give the qcow2 (or raw disk) image Packer built)\n`,
    );
    // Whole sectors but tiny, and a qcow2 with no virtual size: refused too.
    const small = join(sub, 'small.img');
    writeFileSync(small, Buffer.alloc(64 * 1024));
    await expect(packOva({ image: small, out: join(sub, 's.ova'), ...HEDGEHOG, buildType: 'standard', version: '1.0.0' })).rejects.toThrow(/^image: .*small\.img is not a disk image: .* its 65536 bytes are less than 1 MiB/);
    const zero = join(sub, 'zero.qcow2');
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', zero, '0']);
    await expect(packOva({ image: zero, out: join(sub, 'z.ova'), ...HEDGEHOG, buildType: 'standard', version: '1.0.0' })).rejects.toMatchObject({ name: 'InputError', input: 'image', message: expect.stringMatching(/is a qcow2 image with a virtual size of 0 bytes/) });
    expect(readdirSync(sub).sort()).toEqual(['notes.txt', 'small.img', 'zero.qcow2']);
    // A raw disk of whole sectors, 1 MiB or more, is a disk.
    const raw = join(sub, 'disk.raw');
    execFileSync('qemu-img', ['create', '-q', '-f', 'raw', raw, '2M']);
    await expect(packOva({ image: raw, out: join(sub, 'r.ova'), ...HEDGEHOG, buildType: 'standard', version: '1.0.0' })).resolves.toMatchObject({ virtualSize: 2 * 1024 * 1024 });
    rmSync(sub, { recursive: true, force: true });
  }, 60_000);

  it('exits 2 with the input named when --image is missing', async () => {
    const run = await runCli(['pack-ova', '--version', '1.0.0']);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/^labforge pack-ova: image: is required but empty/);
  });
});
