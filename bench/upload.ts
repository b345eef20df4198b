/**
 * upload-artifact benchmark (not part of `npm test`: it moves GiBs).
 *
 *   npm run bench -- --only upload [--quick]
 *   node build/bench/upload.js [--quick] [--dir /var/tmp] [--sizes 1,4] [--parallelism 8] [--chunk-size-mib 16] [--wan-mibps 32]
 *
 * --quick: files of 0.25 and 0.5 GiB (--sizes 0.25,0.5) instead of 1 and 4 GiB, a 0.5 GiB image instead of
 * 2 GiB for 4.; the same measurements. --overlap-only runs section 4 alone, --resume-only section 3 alone.
 *
 * 1. One-pass hashing (SHA-256 + CRC32C) of the smallest file (1 GiB) vs `sha256sum` of the same file.
 * 2. Upload of the 1 GiB and 4 GiB files to the GCS emulator (run in its own process): labforge's upload
 *    (parallel parts + compose + verify + publish) vs the library's default `bucket.upload()`; MiB/s,
 *    ratio and peak RSS of the uploading process (each upload runs in a fresh process). Once against an
 *    unthrottled emulator (CPU-bound on this machine) and once against one that caps every connection at
 *    --wan-mibps, which models what a runner gets per connection to the real service.
 * 3. Resume: an upload of the largest file is SIGKILLed at ~50 % and run again; the bytes the emulator
 *    received beyond the file size are the bytes re-sent.
 * 4. Publishing while packing (issue 16): a flattened qcow2 (per 4 MiB: 1 MiB random, 1 MiB log text, 2 MiB
 *    hole; --overlap-gib, 2 GiB, 0.5 GiB with --quick) → a published, verified OVA on the emulator whose
 *    connections are capped at --wan-mibps: packOva with the streamed upload as its part sink vs packOva
 *    then the upload of the finished file; each in a fresh process, same parallelism and part size; the two
 *    modes alternate, --overlap-repeat times (3, 1 with --quick), and each row takes each mode's fastest run:
 *    on this host the same pack varies by 30 % in CPU seconds from one run to the next.
 * Files live under --dir and are deleted at the end.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Storage } from '@google-cloud/storage';
import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';
import { GcsStore } from '../actions/lib/gcs-upload.js';
import { packOva, type PackOvaOptions } from '../actions/lib/ova-pack.js';
import { GENERIC_LINUX_64 } from '../actions/lib/ovf-descriptor.js';
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

/** Section 4 in a child: image → published OVA, overlapped (`overlap`) or pack then upload (`sequential`). */
async function packPublishMode(mode: string, image: string, endpoint: string, key: string, parallelism: number, chunkMiB: number): Promise<void> {
  const store = new GcsStore({ location: { bucket: 'bench', prefix: '' }, endpoint, parallelism, partSize: chunkMiB * MiB });
  const pack: PackOvaOptions = { image, out: `${image}-${mode}.ova`, appliance: 'demo-lab', buildType: 'standard', version: '1.0.0', os: GENERIC_LINUX_64, cpus: 2, memoryMiB: 2048, buildDate: new Date('2026-01-01T00:00:00Z'), gitSha: 'bench' };
  const t0 = performance.now();
  let packSeconds: number;
  let sha256: string;
  let packCpuSeconds: number | undefined;
  if (mode === 'overlap') {
    const upload = await store.uploadStream({ key, overwrite: true });
    const packed = await packOva({ ...pack, partSink: upload }).catch(async (e: unknown) => {
      await upload.abort(e as Error);
      throw e;
    });
    packSeconds = (performance.now() - t0) / 1000;
    sha256 = (await upload.done).digests.sha256;
    if (sha256 !== packed.sha256) throw new Error('the published SHA-256 differs from the packed one');
  } else {
    const packed = await packOva(pack);
    packSeconds = (performance.now() - t0) / 1000;
    const c = process.cpuUsage();
    packCpuSeconds = (c.user + c.system) / 1e6;
    sha256 = (await store.uploadFile({ localPath: packed.ova, key, overwrite: true })).digests.sha256;
  }
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage();
  const size = Number((await store.bucket.file(key).getMetadata())[0].size);
  rmSync(pack.out, { force: true });
  rmSync(`${pack.out}.sha256`, { force: true });
  process.stdout.write(`${JSON.stringify({ seconds, packSeconds, size, sha256, cpuSeconds: (cpu.user + cpu.system) / 1e6, packCpuSeconds, maxRssMiB: process.resourceUsage().maxRSS / 1024 })}\n`);
}

/** CPU seconds (user + system) a process has used so far, from /proc (clock ticks of 1/100 s on Linux). */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '').split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** A flattened qcow2 of `gib` GiB: per 4 MiB, 1 MiB random, 1 MiB of log text, 2 MiB hole. */
function makeImage(path: string, gib: number): void {
  const raw = `${path}.raw`;
  const fd = openSync(raw, 'w');
  const block = Buffer.alloc(2 * MiB);
  let seq = 0;
  try {
    for (let at = 0; at < gib * GiB; at += 4 * MiB) {
      randomFillSync(block.subarray(0, MiB));
      const lines: string[] = [];
      for (let n = 0; n < MiB; seq++) {
        const l = `${new Date(1_700_000_000_000 + seq * 1000).toISOString()} lab[${seq % 4096}]: fabric link ${seq % 48} ${seq % 3 ? 'up' : 'down'} seq=${seq}\n`;
        lines.push(l);
        n += l.length;
      }
      block.write(lines.join('').slice(0, MiB), MiB);
      writeSync(fd, block, 0, 2 * MiB, at);
    }
  } finally {
    closeSync(fd);
  }
  const r = spawnSync('sh', ['-c', `truncate -s ${gib * GiB} '${raw}' && qemu-img convert -f raw -O qcow2 '${raw}' '${path}' && rm -f '${raw}'`], { stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`could not create ${path}`);
}

function startChild(args: string[]): { child: ChildProcess; done: Promise<{ out: string; code: number | null }> } {
  const child = spawn(process.execPath, [...process.execArgv, self, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
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
      'overlap-gib': { type: 'string' },
      'overlap-repeat': { type: 'string' },
      'overlap-only': { type: 'boolean', default: false },
      'pack-publish': { type: 'string', multiple: true },
      measure: { type: 'string', multiple: true },
    },
    allowPositionals: true,
  });
  if (values['serve-emulator']) return emulatorMode(values['serve-emulator'], Number(values['stream-mibps']));
  const parallelism = Number(values.parallelism);
  const chunkMiB = Number(values['chunk-size-mib']);
  if (values['pack-publish']) {
    const [mode, image, endpoint, key] = values['pack-publish'];
    return packPublishMode(mode!, image!, endpoint!, key!, parallelism, chunkMiB);
  }
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
    const proc = spawn(process.execPath, [...process.execArgv, self, '--serve-emulator', join(work, sub), '--stream-mibps', String(mibps)], { stdio: ['ignore', 'pipe', 'inherit'] });
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
    for (const g of values['overlap-only'] ? [] : sizes) {
      const f = join(work, `file-${g}g.bin`);
      makeFile(f, g * GiB);
      files.set(g, f);
    }

    if (!values['resume-only'] && !values['overlap-only']) {
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
    if (!values['overlap-only']) {
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
    }

    // 4. Image → published, verified OVA: overlapped vs pack then upload, on the capped emulator.
    const overlapGiB = Number(values['overlap-gib'] ?? (values.quick ? '0.5' : '2'));
    if (!(overlapGiB > 0)) throw new Error(`--overlap-gib: '${values['overlap-gib']}' is not a positive GiB size`);
    const overlapRepeat = Number(values['overlap-repeat'] ?? (values.quick ? '1' : '3'));
    if (!Number.isInteger(overlapRepeat) || overlapRepeat < 1) throw new Error(`--overlap-repeat: '${values['overlap-repeat']}' is not a whole number ≥ 1`);
    const image = join(work, `flat-${overlapGiB}g.qcow2`);
    makeImage(image, overlapGiB);
    const [label, target] = targets[targets.length - 1]!;
    const emulatorPid = emulators[emulators.length - 1]!.proc.pid!;
    const cores = availableParallelism();
    type PackRun = { seconds: number; packSeconds: number; size: number; sha256: string; cpuSeconds: number; packCpuSeconds?: number; maxRssMiB: number; emulatorCpu: number };
    // The goal's row: the default parallelism. The second row: 2 connections, so that the upload waits on the
    // (modelled) link rather than on the CPU, as on a runner whose cores are not all busy packing.
    for (const [conns, isGoal] of [
      [parallelism, true],
      [2, false],
    ] as const) {
      const runs: Record<string, PackRun> = {};
      for (let n = 0; n < overlapRepeat; n++) {
        for (const mode of ['sequential', 'overlap']) {
          await deleteAll(target);
          const cpu0 = cpuSeconds(emulatorPid);
          const r = await runChild(['--pack-publish', mode, '--pack-publish', image, '--pack-publish', target, '--pack-publish', `${mode}.ova`, '--parallelism', String(conns), '--chunk-size-mib', String(chunkMiB)]);
          if (r.code !== 0) throw new Error(`${mode} pack + publish failed`);
          const run = { ...(JSON.parse(r.out.trim().split('\n').pop()!) as PackRun), emulatorCpu: cpuSeconds(emulatorPid) - cpu0 };
          if (!runs[mode] || run.seconds < runs[mode].seconds) runs[mode] = run;
        }
      }
      await deleteAll(target);
      const seq = runs.sequential!;
      const ovl = runs.overlap!;
      if (seq.sha256 !== ovl.sha256) throw new Error('the two modes published different OVAs');
      const ratio = ovl.seconds / seq.seconds;
      const floor = (ovl.cpuSeconds + ovl.emulatorCpu) / cores;
      // The best any overlap can do if uploading cost no CPU and no round trips: the packing alone, against the
      // packing then the OVA's bytes over the modelled link (every connection busy at --wan-mibps).
      const linkSeconds = ovl.size / (conns * wanMiBps * MiB);
      const best = seq.packSeconds / (seq.packSeconds + linkSeconds);
      rows.push(
        `| ${overlapGiB} GiB image → published OVA (${(ovl.size / MiB).toFixed(0)} MiB; ${label}, ${conns} connections; fastest of ${overlapRepeat}) | pack ${seq.packSeconds.toFixed(1)} s then upload: ${seq.seconds.toFixed(1)} s | published while packing: ${ovl.seconds.toFixed(1)} s (packing ${ovl.packSeconds.toFixed(1)} s), peak RSS ${ovl.maxRssMiB.toFixed(0)} MiB | ${ratio.toFixed(2)}× | ${isGoal ? `goal ≤ 0.7×: ${ratio <= 0.7 ? 'met' : '**not met**'}` : 'link-bound (no goal)'}; same SHA-256; best case if uploading cost no CPU: pack ${seq.packSeconds.toFixed(1)} s against pack then ${linkSeconds.toFixed(1)} s on the link = ${best.toFixed(2)}×; CPU floor of the overlapped run on ${cores} cores (its CPU seconds and the emulator's, over the cores) ${floor.toFixed(1)} s = ${(floor / seq.seconds).toFixed(2)}×; CPU s: pack ${(seq.packCpuSeconds ?? 0).toFixed(1)} + upload ${(seq.cpuSeconds - (seq.packCpuSeconds ?? 0)).toFixed(1)} vs ${ovl.cpuSeconds.toFixed(1)} overlapped, emulator ${seq.emulatorCpu.toFixed(1)} vs ${ovl.emulatorCpu.toFixed(1)} |`,
      );
      console.error(rows[rows.length - 1]);
    }
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
