/**
 * `labforge verify` benchmark: the one-pass check (whole-file SHA-256 + every entry's SHA-256 against the
 * manifest) vs `sha256sum -c` of the same OVA (the checksum alone, the floor), with the peak RSS of each, to show
 * that verify's memory stays flat in the OVA's size.
 *
 *   npm run bench -- --only verify [--quick]
 *   node build/bench/verify.js [--quick] [--sizes 1,8] [--dir /var/tmp/labforge-bench-verify]
 *
 * --quick: OVAs of 0.25 and 1 GiB instead of 1 and 8 GiB; the same methods and baseline.
 *
 * The OVAs are real ustar archives (tar-stream writes the headers) of an OVF descriptor, its manifest and a disk
 * entry whose data are zeros left as a hole in the file: a multi-GiB OVA costs no disk space, and reading it
 * costs no disk I/O, so the table measures the hashing and the walk, not the disk. Both methods run in their own
 * process under GNU time (`%M`: peak RSS).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, ftruncateSync, mkdirSync, openSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { pack } from 'tar-stream';
import { GENERIC_LINUX_64, buildOvfDescriptor } from '../actions/lib/ovf-descriptor.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
/** The repository root: benchmarks run from it (the runner sets it as their working directory). */
const root = process.cwd();

/** The ustar header (512 bytes, or more with a base-256 size) tar-stream writes for one entry. */
async function tarHeader(name: string, size: number): Promise<Buffer> {
  const tar = pack();
  const chunks: Buffer[] = [];
  const got = new Promise<Buffer>((res) => {
    tar.on('data', (c: unknown) => {
      chunks.push(c as Buffer);
      const all = Buffer.concat(chunks);
      if (all.length >= 512) res(all.subarray(0, 512));
    });
  });
  tar.entry({ name, size, mode: 0o644, mtime: new Date(0), type: 'file', uname: '', gname: '' });
  const header = await got;
  tar.destroy();
  return header;
}

const pad = (n: number) => (512 - (n % 512)) % 512;

/** The descriptor pack-ova writes (the product's own builder), for a disk of `diskBytes` zeros. */
function ovfDescriptor(name: string, diskBytes: number): string {
  return buildOvfDescriptor({
    name,
    diskFile: `${name}-disk1.vmdk`,
    diskFileSize: diskBytes,
    capacityBytes: diskBytes,
    populatedBytes: 0,
    cpus: 1,
    memoryMiB: 1024,
    os: GENERIC_LINUX_64,
    product: { appliance: 'bench', buildType: 'standard', version: '1.0.0', buildDate: '2026-01-01T00:00:00Z', gitSha: '' },
    annotation: 'benchmark OVA',
  });
}

/** SHA-256 of `bytes` zero bytes, in 16 MiB steps. */
function zerosSha256(bytes: number): string {
  const h = createHash('sha256');
  const block = Buffer.alloc(16 * MiB);
  for (let left = bytes; left > 0; left -= block.length) h.update(left >= block.length ? block : block.subarray(0, left));
  return h.digest('hex');
}

/** Writes `<dir>/<name>.ova` (descriptor, manifest, a sparse zero disk of `diskBytes`) and its `.sha256`. */
async function makeOva(dir: string, name: string, diskBytes: number): Promise<string> {
  const ovf = Buffer.from(ovfDescriptor(name, diskBytes));
  const disk = `${name}-disk1.vmdk`;
  const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
  const mf = Buffer.from(`SHA256(${name}.ovf)= ${sha(ovf)}\nSHA256(${disk})= ${zerosSha256(diskBytes)}\n`);
  const ova = join(dir, `${name}.ova`);
  const fd = openSync(ova, 'w');
  try {
    let at = 0;
    const put = (b: Buffer) => {
      writeSync(fd, b, 0, b.length, at);
      at += b.length;
    };
    for (const [n, body] of [[`${name}.ovf`, ovf], [`${name}.mf`, mf]] as const) {
      put(await tarHeader(n, body.length));
      put(body);
      put(Buffer.alloc(pad(body.length)));
    }
    put(await tarHeader(disk, diskBytes));
    // The disk's data, its padding and the two end-of-archive blocks: zeros, left as a hole.
    ftruncateSync(fd, at + diskBytes + pad(diskBytes) + 1024);
  } finally {
    closeSync(fd);
  }
  execFileSync('bash', ['-c', 'cd "$1" && sha256sum "$2" > "$2.sha256"', '_', dir, `${name}.ova`]);
  return ova;
}

/** Runs a command under GNU time; returns seconds and the peak RSS in KiB. */
function timed(cmd: string, args: string[], cwd: string): { seconds: number; rssKiB: number; stdout: string } {
  const t0 = performance.now();
  const r = spawnSync('/usr/bin/time', ['-f', '%M', cmd, ...args], { cwd, encoding: 'utf8', maxBuffer: 64 * MiB });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr.slice(-2000)}`);
  return { seconds: (performance.now() - t0) / 1000, rssKiB: Number(r.stderr.trim().split('\n').pop()), stdout: r.stdout };
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false }, sizes: { type: 'string' }, dir: { type: 'string', default: '/var/tmp/labforge-bench-verify' } } });
  const sizes = (values.sizes ?? (values.quick ? '0.25,1' : '1,8')).split(',').map(Number);
  if (sizes.some((g) => !(g > 0))) throw new Error(`--sizes: '${values.sizes}' is not a list of positive GiB sizes`);
  const dir = values.dir!;
  mkdirSync(dir, { recursive: true });
  const cli = join(root, 'cli', 'dist', 'index.js');
  const rows: string[] = [];
  try {
    for (const gib of sizes) {
      const name = `bench-standard-${String(gib).replace('.', '_')}`;
      process.stderr.write(`${gib} GiB: making the sparse OVA and its .sha256…\n`);
      await makeOva(dir, name, Math.round(gib * GiB));
      process.stderr.write(`${gib} GiB: sha256sum -c…\n`);
      const floor = timed('sha256sum', ['-c', `${name}.ova.sha256`], dir);
      process.stderr.write(`${gib} GiB: labforge verify…\n`);
      const verify = timed(process.execPath, [cli, 'verify', `${name}.ova`], dir);
      if (!verify.stdout.startsWith(`OK: ${name}.ova`)) throw new Error(`labforge verify did not report OK:\n${verify.stdout}`);
      const size = `${gib} GiB`;
      rows.push(`| ${size} | sha256sum -c (the checksum alone) | ${floor.seconds.toFixed(1)} | 1.00 | ${(floor.rssKiB / 1024).toFixed(0)} |`);
      rows.push(`| ${size} | labforge verify (checksum + every entry against the manifest) | ${verify.seconds.toFixed(1)} | ${(verify.seconds / floor.seconds).toFixed(2)} | ${(verify.rssKiB / 1024).toFixed(0)} |`);
      rmSync(join(dir, `${name}.ova`), { force: true });
      rmSync(join(dir, `${name}.ova.sha256`), { force: true });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const lines = [
    `OVAs of a descriptor, a manifest and a zero-filled sparse disk (no disk I/O: the hashing and the walk are measured), one run per method; Node ${process.version}`,
    '',
    '| OVA | method | seconds | × sha256sum -c | peak RSS (MiB) |',
    '|---|---|---:|---:|---:|',
    ...rows,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

await main();
