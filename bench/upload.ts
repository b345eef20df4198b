/**
 * upload-artifact benchmark (not part of `npm test`: it moves GiBs).
 *
 *   npm run bench -- --only upload [--quick]
 *   node build/bench/upload.js [--quick] [--dir /var/tmp] [--sizes 1,4] [--parallelism 8] [--chunk-size-mib 16] [--wan-mibps 32]
 *
 * --quick: files of 0.25 and 0.5 GiB (--sizes 0.25,0.5) instead of 1 and 4 GiB; the same measurements.
 *
 * 1. One-pass hashing (SHA-256 + CRC32C) of the smallest file (1 GiB) vs `sha256sum` of the same file.
 * 2. Upload of the 1 GiB and 4 GiB files to the GCS emulator (run in its own process): labforge's upload
 *    (parallel parts + compose + verify + publish) vs the library's default `bucket.upload()`; MiB/s,
 *    ratio and peak RSS of the uploading process (each upload runs in a fresh process). Once against an
 *    unthrottled emulator (CPU-bound on this machine) and once against one that caps every connection at
 *    --wan-mibps, which models what a runner gets per connection to the real service.
 * 3. Resume: an upload of the largest file is SIGKILLed at ~50 % and run again; the bytes the emulator
 *    received beyond the file size are the bytes re-sent.
 * Files live under --dir and are deleted at the end.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Storage } from '@google-cloud/storage';
import { GcsStore } from '../actions/lib/gcs-upload.js';
import { hashFile } from '../actions/lib/upload-hashing.js';
import { GcsEmulator } from '../test/support/gcs-emulator.js';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
const self = process.argv[1]!;

interface Measure {
  seconds: number;
  maxRssMiB: number;
}

async function emulatorMode(dataDir: string, streamMiBps: number): Promise<void> {
  const emulator = await GcsEmulator.start({ buckets: ['bench'], dataDir, ...(streamMiBps > 0 ? { streamBytesPerSecond: streamMiBps * MiB } : {}) });
  process.stdout.write(`${JSON.stringify({ endpoint: emulator.endpoint })}\n`);
  const stop = () => void emulator.stop().then(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

async function measureMode(kind: string, file: string, endpoint: string, key: string, parallelism: number, chunkMiB: number): Promise<void> {
  const t0 = performance.now();
  if (kind === 'ours') {
    const store = new GcsStore({ location: { bucket: 'bench', prefix: '' }, endpoint, parallelism, partSize: chunkMiB * MiB });
    await store.uploadFile({ localPath: file, key, overwrite: true });
  } else {
    const storage = new Storage({ apiEndpoint: endpoint, projectId: 'bench' });
    await storage.bucket('bench').upload(file, { destination: key });
  }
  const m: Measure = { seconds: (performance.now() - t0) / 1000, maxRssMiB: process.resourceUsage().maxRSS / 1024 };
  process.stdout.write(`${JSON.stringify(m)}\n`);
}

function startChild(args: string[]): { child: ChildProcess; done: Promise<{ out: string; code: number | null }> } {
  const child = spawn(process.execPath, [self, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  return { child, done: new Promise((res) => child.on('close', (code) => res({ out, code }))) };
}

function runChild(args: string[]): Promise<{ out: string; code: number | null }> {
  return startChild(args).done;
}

async function stats(endpoint: string): Promise<{ uploadedBytes: number }> {
  return (await (await fetch(`${endpoint}/_emulator/stats`)).json()) as { uploadedBytes: number };
}

async function deleteAll(endpoint: string): Promise<void> {
  const storage = new Storage({ apiEndpoint: endpoint, projectId: 'bench' });
  const [files] = await storage.bucket('bench').getFiles();
  for (const f of files) await f.delete();
}

function makeFile(path: string, bytes: number): void {
  // Random data: nothing compresses or dedups it.
  const r = spawnSync('sh', ['-c', `head -c ${bytes} /dev/urandom > '${path}'`], { stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`could not create ${path}`);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      dir: { type: 'string', default: '/var/tmp' },
      quick: { type: 'boolean', default: false },
      sizes: { type: 'string' },
      parallelism: { type: 'string', default: '8' },
      'chunk-size-mib': { type: 'string', default: '16' },
      'serve-emulator': { type: 'string' },
      'stream-mibps': { type: 'string', default: '0' },
      'wan-mibps': { type: 'string', default: '32' },
      'resume-only': { type: 'boolean', default: false },
      measure: { type: 'string', multiple: true },
    },
    allowPositionals: true,
  });
  if (values['serve-emulator']) return emulatorMode(values['serve-emulator'], Number(values['stream-mibps']));
  const parallelism = Number(values.parallelism);
  const chunkMiB = Number(values['chunk-size-mib']);
  if (values.measure) {
    const [kind, file, endpoint, key] = values.measure;
    return measureMode(kind!, file!, endpoint!, key!, parallelism, chunkMiB);
  }

  const sizes = (values.sizes ?? (values.quick ? '0.25,0.5' : '1,4')).split(',').map(Number);
  if (sizes.some((g) => !(g > 0))) throw new Error(`--sizes: '${values.sizes}' is not a list of positive GiB sizes`);
  const work = mkdtempSync(join(values.dir!, 'labforge-bench-upload-'));
  const rows: string[] = [];
  const wanMiBps = Number(values['wan-mibps']);
  const startEmulator = (sub: string, mibps: number) => {
    spawnSync('mkdir', ['-p', join(work, sub)]);
    const proc = spawn(process.execPath, [self, '--serve-emulator', join(work, sub), '--stream-mibps', String(mibps)], { stdio: ['ignore', 'pipe', 'inherit'] });
    const ready = new Promise<string>((res, rej) => {
      proc.stdout!.once('data', (d: Buffer) => res((JSON.parse(d.toString()) as { endpoint: string }).endpoint));
      proc.once('exit', () => rej(new Error('the emulator exited')));
    });
    return { proc, ready };
  };
  const emulators = [startEmulator('emulator', 0), ...(wanMiBps > 0 ? [startEmulator('emulator-wan', wanMiBps)] : [])];
  try {
    const endpoint = await emulators[0]!.ready;
    const targets: [string, string][] = [['emulator', endpoint]];
    if (emulators[1]) targets.push([`emulator, ${wanMiBps} MiB/s per connection`, await emulators[1].ready]);
    const files = new Map<number, string>();
    for (const g of sizes) {
      const f = join(work, `file-${g}g.bin`);
      makeFile(f, g * GiB);
      files.set(g, f);
    }

    if (!values['resume-only']) {
      // 1. Hashing.
      const hashFileName = files.get(sizes[0]!)!;
      const hashBytes = sizes[0]! * GiB;
      spawnSync('cat', [hashFileName], { stdio: ['ignore', 'ignore', 'inherit'] }); // warm the page cache for both
      let t = performance.now();
      const sum = spawnSync('sha256sum', [hashFileName], { encoding: 'utf8' });
      const tSum = (performance.now() - t) / 1000;
      t = performance.now();
      const ours = await hashFile(hashFileName);
      const tOurs = (performance.now() - t) / 1000;
      if (sum.stdout.split(' ')[0] !== ours.sha256) throw new Error('SHA-256 differs from sha256sum');
      const hashRate = (s: number) => (hashBytes / MiB / s).toFixed(0);
      rows.push(`| hashing ${sizes[0]} GiB | sha256sum: ${hashRate(tSum)} MiB/s | labforge SHA-256 + CRC32C, one pass: ${hashRate(tOurs)} MiB/s | ${(tSum / tOurs).toFixed(2)}× | — |`);
      console.error(rows[rows.length - 1]);

      // 2. Uploads.
      const rss: Record<string, number> = {};
      for (const [label, target] of targets) {
        for (const g of sizes) {
          const f = files.get(g)!;
          const results: Record<string, Measure> = {};
          for (const kind of ['library', 'ours']) {
            await deleteAll(target);
            const r = await runChild(['--measure', kind, '--measure', f, '--measure', target, '--measure', `${kind}-${g}g.bin`, '--parallelism', String(parallelism), '--chunk-size-mib', String(chunkMiB)]);
            if (r.code !== 0) throw new Error(`${kind} upload of ${g} GiB failed`);
            results[kind] = JSON.parse(r.out.trim().split('\n').pop()!) as Measure;
          }
          await deleteAll(target);
          const rate = (m: Measure) => (g * 1024) / m.seconds;
          const lib = results.library!;
          const our = results.ours!;
          if (target === endpoint) rss[`ours-${g}`] = our.maxRssMiB;
          rows.push(
            `| upload ${g} GiB (${label}) | bucket.upload(): ${rate(lib).toFixed(0)} MiB/s, peak RSS ${lib.maxRssMiB.toFixed(0)} MiB | labforge: ${rate(our).toFixed(0)} MiB/s, peak RSS ${our.maxRssMiB.toFixed(0)} MiB | ${(lib.seconds / our.seconds).toFixed(2)}× | ${our.seconds.toFixed(1)} s vs ${lib.seconds.toFixed(1)} s |`,
          );
          console.error(rows[rows.length - 1]);
        }
      }
      if (sizes.length > 1) {
        const a = rss[`ours-${sizes[0]}`]!;
        const b = rss[`ours-${sizes[sizes.length - 1]}`]!;
        rows.push(`| peak RSS, labforge upload | ${sizes[0]} GiB: ${a.toFixed(0)} MiB | ${sizes[sizes.length - 1]} GiB: ${b.toFixed(0)} MiB | Δ ${(b - a).toFixed(0)} MiB | goal: Δ ≤ 20 MB |`);
        console.error(rows[rows.length - 1]);
      }

    }

    // 3. Resume after a kill at ~50 %.
    const g = sizes[sizes.length - 1]!;
    const f = files.get(g)!;
    const size = g * GiB;
    await deleteAll(endpoint);
    const before = (await stats(endpoint)).uploadedBytes;
    const killed = startChild(['--measure', 'ours', '--measure', f, '--measure', endpoint, '--measure', 'resume.bin', '--parallelism', String(parallelism), '--chunk-size-mib', String(chunkMiB)]);
    // Poll until half the file arrived, then SIGKILL the uploader (by its PID).
    for (;;) {
      await new Promise((r) => setTimeout(r, 50));
      if ((await stats(endpoint)).uploadedBytes - before >= size / 2) break;
    }
    killed.child.kill('SIGKILL');
    await killed.done;
    await new Promise((r) => setTimeout(r, 300));
    const afterKill = (await stats(endpoint)).uploadedBytes - before;
    const second = await runChild(['--measure', 'ours', '--measure', f, '--measure', endpoint, '--measure', 'resume.bin', '--parallelism', String(parallelism), '--chunk-size-mib', String(chunkMiB)]);
    if (second.code !== 0) throw new Error('the resumed upload failed');
    const total = (await stats(endpoint)).uploadedBytes - before;
    const resent = total - size;
    rows.push(
      `| resume ${g} GiB after SIGKILL at ${((100 * afterKill) / size).toFixed(0)} % | received before the kill: ${(afterKill / MiB).toFixed(0)} MiB | second run sent ${((total - afterKill) / MiB).toFixed(0)} MiB | re-sent ${(resent / MiB).toFixed(0)} MiB = ${((100 * resent) / size).toFixed(1)} % of the file | goal ≤ 10 % |`,
    );
    console.error(rows[rows.length - 1]);
  } finally {
    for (const e of emulators) {
      e.proc.kill('SIGTERM');
      await new Promise((r) => e.proc.once('exit', r));
    }
    rmSync(work, { recursive: true, force: true });
  }
  const cpu = spawnSync('sh', ['-c', "nproc; grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"], { encoding: 'utf8' }).stdout.trim().split('\n');
  console.log(`machine: ${cpu[0]} cores,${cpu[1] ?? ''}; node ${process.version}; parallelism ${parallelism}, parts ${chunkMiB} MiB\n`);
  console.log('| measurement | baseline | labforge | ratio | note |');
  console.log('|---|---|---|---|---|');
  for (const r of rows) console.log(r);
}

await main();
