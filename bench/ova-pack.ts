/**
 * OVA packing benchmark (issue 16): packOva with labforge's parallel streamOptimized writer (pool sizes 1, 2
 * and 4) and with the qemu-img writer, against a bare `qemu-img convert -O vmdk -o subformat=streamOptimized`
 * of the same image (the floor every other tool shares) and the three-step baseline (convert to a VMDK
 * file, sha256sum it for the manifest, tar, sha256sum the OVA). packOva's time includes the SHA-256 of the
 * VMDK and of the OVA and the tar layout.
 *
 *   npm run bench -- --only ova-pack [--quick]
 *   node build/bench/ova-pack.js [--quick] [--sizes 2,8] [--repeat 1] [--dir /var/tmp/labforge-bench-ova] [--no-demo]
 *
 * --quick: images of 0.5 and 1 GiB (--sizes 0.5,1) instead of 2 and 8 GiB; the same methods and baseline.
 *
 * Images are qcow2 with real data in them: per 4 MiB stripe, 1 MiB random bytes (incompressible), 1 MiB
 * log-like text (compressible) and 2 MiB never written (holes); plus the demo appliance's cached base disk
 * (a real Debian root file system) when this machine has one. At the smallest size the stream writer also
 * runs with the raw-conversion reader (the path of compressed qcow2 and backing chains) and with batches of
 * 1, 4 and 64 grains (the default is 16) and with every grain deflated (no incompressible-grain check), to
 * show why the defaults are what they are. Every method runs in a child process so
 * that its peak RSS is its own (GNU time for qemu-img). With --repeat N every method runs N times
 * (interleaved) and the fastest run counts.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { availableParallelism, homedir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { packOva, type VmdkWriter } from '../actions/lib/ova-pack.js';
import type { ReadMode } from '../actions/lib/vmdk-stream-source.js';

const MiB = 1024 * 1024;

function makeImage(path: string, gib: number): void {
  if (existsSync(path)) return;
  const raw = `${path}.raw`;
  const fd = openSync(raw, 'w');
  const random = Buffer.alloc(MiB);
  const text = Buffer.alloc(MiB);
  let line = 0;
  try {
    for (let off = 0; off < Math.round(gib * 1024) * MiB; off += 4 * MiB) {
      randomFillSync(random);
      writeSync(fd, random, 0, MiB, off);
      let t = '';
      while (t.length < MiB) t += `${new Date(1_700_000_000_000 + line * 997).toISOString()} lab[${line % 4096}]: fabric link ${line % 48} state ${line % 3 ? 'up' : 'down'} seq=${line++}\n`;
      text.write(t.slice(0, MiB));
      writeSync(fd, text, 0, MiB, off + MiB);
    }
  } finally {
    closeSync(fd);
  }
  execFileSync('truncate', ['-s', String(Math.round(gib * 1024) * MiB), raw]);
  execFileSync('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', raw, path]);
  rmSync(raw);
}

/** Runs a command under GNU time; returns seconds and the peak RSS in KiB. */
function timed(cmd: string, args: string[]): { seconds: number; rssKiB: number } {
  const t0 = performance.now();
  const r = spawnSync('/usr/bin/time', ['-f', '%M', cmd, ...args], { encoding: 'utf8', maxBuffer: 64 * MiB });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr}`);
  const rss = Number(r.stderr.trim().split('\n').pop());
  return { seconds: (performance.now() - t0) / 1000, rssKiB: rss };
}

/** One packOva configuration. */
interface Method {
  label: string;
  writer: VmdkWriter;
  threads?: number;
  readMode?: ReadMode;
  batchGrains?: number;
  storeIncompressible?: boolean;
}

interface Run {
  seconds: number;
  rssKiB: number;
  /** Bytes of the VMDK written. */
  vmdkBytes: number;
  detail: string;
}

interface Row {
  image: string;
  method: string;
  seconds: number;
  ratio: number;
  /** VMDK size over the bare convert's. */
  sizeRatio: number;
  rssMiB: number;
  extraDiskGiB: number;
}

function baseline(image: string, work: string): { seconds: number; convertSeconds: number; rssKiB: number; peakDisk: number } {
  const t0 = performance.now();
  const vmdk = join(work, 'disk1.vmdk');
  const conv = timed('qemu-img', ['convert', '-O', 'vmdk', '-o', 'subformat=streamOptimized', image, vmdk]);
  const sum = execFileSync('sha256sum', [vmdk], { encoding: 'utf8' }).split(' ')[0];
  writeFileSync(join(work, 'appliance.ovf'), '<Envelope/>\n');
  const ovfSum = execFileSync('sha256sum', [join(work, 'appliance.ovf')], { encoding: 'utf8' }).split(' ')[0];
  writeFileSync(join(work, 'appliance.mf'), `SHA256(appliance.ovf)= ${ovfSum}\nSHA256(disk1.vmdk)= ${sum}\n`);
  const tar = timed('tar', ['-C', work, '--format=ustar', '-cf', join(work, 'appliance.ova'), 'appliance.ovf', 'appliance.mf', 'disk1.vmdk']);
  const peakDisk = statSync(vmdk).size + statSync(join(work, 'appliance.ova')).size;
  execFileSync('bash', ['-c', 'sha256sum "$1" > "$1.sha256"', '_', join(work, 'appliance.ova')]);
  const seconds = (performance.now() - t0) / 1000;
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work);
  return { seconds, convertSeconds: conv.seconds, rssKiB: Math.max(conv.rssKiB, tar.rssKiB), peakDisk };
}

/** In the child process: one packOva, its time and peak RSS on stdout. */
async function child(spec: string): Promise<void> {
  const o = JSON.parse(spec) as { image: string; out: string } & Method;
  const t0 = performance.now();
  const r = await packOva({ image: o.image, out: o.out, appliance: 'demo-lab', buildType: 'standard', version: '1.0.0', gitSha: '0000000', os: { cimId: 96, vmwareOsType: 'debian11_64Guest', description: 'Debian' }, cpus: 2, memoryMiB: 1024, vmdkWriter: o.writer, packThreads: o.threads, readMode: o.readMode, batchGrains: o.batchGrains, storeIncompressible: o.storeIncompressible });
  const seconds = (performance.now() - t0) / 1000;
  const run: Run = { seconds, rssKiB: process.resourceUsage().maxRSS, vmdkBytes: r.entries.find((e) => e.name.endsWith('.vmdk'))!.size, detail: `write ${r.timings.convertSeconds.toFixed(1)} s + hash ${r.timings.hashSeconds.toFixed(1)} s` };
  process.stdout.write(JSON.stringify(run));
}

/** The newest cached base disk of the demo appliance (packer/demo-lab/build-base.sh), if any. */
function demoDisk(): string | undefined {
  const found: { path: string; mtime: number }[] = [];
  for (const root of ['/var/cache/labforge/demo-lab', join(homedir(), '.cache/labforge/demo-lab')]) {
    if (!existsSync(root)) continue;
    for (const d of readdirSync(root)) {
      const p = join(root, d, 'disk.qcow2');
      if (existsSync(p)) found.push({ path: p, mtime: statSync(p).mtimeMs });
    }
  }
  return found.sort((a, b) => b.mtime - a.mtime)[0]?.path;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false }, sizes: { type: 'string' }, repeat: { type: 'string', default: '1' }, dir: { type: 'string', default: '/var/tmp/labforge-bench-ova' }, child: { type: 'string' }, keep: { type: 'boolean' }, 'no-demo': { type: 'boolean', default: false } } });
  if (values.child) return child(values.child);
  const dir = values.dir!;
  mkdirSync(dir, { recursive: true });
  const rows: Row[] = [];
  const notes: string[] = [];
  const repeat = Number(values.repeat);
  if (!Number.isInteger(repeat) || repeat < 1) throw new Error(`--repeat: '${values.repeat}' is not a positive whole number`);
  const sizes = (values.sizes ?? (values.quick ? '0.5,1' : '2,8')).split(',').map(Number);
  if (sizes.some((g) => !(g > 0))) throw new Error(`--sizes: '${values.sizes}' is not a list of positive GiB sizes`);
  const cores = availableParallelism();
  const pools = [1, 2, 4];
  const images: { label: string; path: string; made: boolean; tuning: boolean }[] = sizes.map((gib, i) => ({ label: `${gib} GiB`, path: join(dir, `image-${gib}g.qcow2`), made: true, tuning: i === 0 }));
  const demo = values['no-demo'] ? undefined : demoDisk();
  if (demo) images.push({ label: 'demo appliance disk', path: demo, made: false, tuning: false });
  else notes.push('demo appliance disk: no cached base disk under /var/cache/labforge/demo-lab or ~/.cache/labforge/demo-lab (build it with packer/demo-lab/build-base.sh): row skipped');
  /** Peak RSS of the stream writer with 2 threads, per generated image size. */
  const streamRss: { label: string; rssMiB: number }[] = [];
  const goals: string[] = [];
  const fastest = <T extends { seconds: number }>(runs: T[]) => runs.reduce((a, b) => (b.seconds < a.seconds ? b : a));

  for (const img of images) {
    if (img.made) {
      process.stderr.write(`${img.label}: making the image…\n`);
      makeImage(img.path, Number(img.label.split(' ')[0]));
    }
    const work = join(dir, 'work');
    rmSync(work, { recursive: true, force: true });
    mkdirSync(work);
    const methods: Method[] = [
      { label: 'packOva, qemu-img writer', writer: 'qemu-img' },
      ...pools.map((t) => ({ label: `packOva, stream writer, pool ${t}`, writer: 'stream' as const, threads: t })),
      { label: 'packOva, stream writer, pool 2, every grain deflated (no incompressible-grain check)', writer: 'stream', threads: 2, storeIncompressible: false },
    ];
    if (img.tuning) {
      methods.push({ label: 'packOva, stream writer, pool 2, raw-conversion reader', writer: 'stream', threads: 2, readMode: 'converted' });
      for (const b of [1, 4, 64]) methods.push({ label: `packOva, stream writer, pool 2, batches of ${b} grain(s)`, writer: 'stream', threads: 2, batchGrains: b });
    }
    const bares: { seconds: number; rssKiB: number }[] = [];
    const runs = new Map<string, Run[]>(methods.map((m) => [m.label, []]));
    const bases: ReturnType<typeof baseline>[] = [];
    let bareBytes = 0;
    for (let i = 0; i < repeat; i++) {
      process.stderr.write(`${img.label} (${i + 1}/${repeat}): bare qemu-img convert…\n`);
      bares.push(timed('qemu-img', ['convert', '-O', 'vmdk', '-o', 'subformat=streamOptimized', img.path, join(work, 'bare.vmdk')]));
      bareBytes = statSync(join(work, 'bare.vmdk')).size;
      rmSync(join(work, 'bare.vmdk'));
      for (const m of methods) {
        process.stderr.write(`${img.label} (${i + 1}/${repeat}): ${m.label}…\n`);
        const pr = spawnSync(process.execPath, [process.argv[1]!, '--child', JSON.stringify({ ...m, image: img.path, out: join(work, 'packed.ova') })], { encoding: 'utf8', maxBuffer: 64 * MiB });
        if (pr.status !== 0) throw new Error(`packOva child (${m.label}) failed: ${pr.stderr}`);
        runs.get(m.label)!.push(JSON.parse(pr.stdout) as Run);
        rmSync(work, { recursive: true, force: true });
        mkdirSync(work);
      }
      if (img.made) {
        process.stderr.write(`${img.label} (${i + 1}/${repeat}): baseline convert + sha256sum + tar + sha256sum…\n`);
        bases.push(baseline(img.path, work));
      }
    }
    rmSync(work, { recursive: true, force: true });
    const bare = fastest(bares);
    const qcow2Size = statSync(img.path).size;
    const label = `${img.label} (qcow2 ${(qcow2Size / 2 ** 30).toFixed(2)} GiB, vmdk ${(bareBytes / 2 ** 30).toFixed(2)} GiB)`;
    rows.push({ image: label, method: 'bare qemu-img convert (floor)', seconds: bare.seconds, ratio: 1, sizeRatio: 1, rssMiB: bare.rssKiB / 1024, extraDiskGiB: bareBytes / 2 ** 30 });
    for (const m of methods) {
      const r = fastest(runs.get(m.label)!);
      rows.push({ image: label, method: `${m.label} (${r.detail})`, seconds: r.seconds, ratio: r.seconds / bare.seconds, sizeRatio: r.vmdkBytes / bareBytes, rssMiB: r.rssKiB / 1024, extraDiskGiB: (r.vmdkBytes + (m.readMode === 'converted' ? qcow2Size : 0)) / 2 ** 30 });
      if (m.writer === 'stream' && m.threads === Math.min(2, cores) && !m.readMode && !m.batchGrains && m.storeIncompressible === false) {
        goals.push(`${img.label}, every grain deflated: ${(r.seconds / bare.seconds).toFixed(2)}× a bare convert, VMDK ${((r.vmdkBytes / bareBytes - 1) * 100).toFixed(2)} % vs qemu-img's`);
      }
      if (m.writer === 'stream' && m.threads === Math.min(2, cores) && !m.readMode && !m.batchGrains && m.storeIncompressible === undefined) {
        goals.push(`${img.label}: ${(r.seconds / bare.seconds).toFixed(2)}× a bare convert (goal ≤ 0.6×: ${r.seconds / bare.seconds <= 0.6 ? 'met' : '**not met**'}), VMDK ${((r.vmdkBytes / bareBytes - 1) * 100).toFixed(2)} % vs qemu-img's (goal ≤ +1 %: ${r.vmdkBytes <= bareBytes * 1.01 ? 'met' : '**not met**'})`);
        if (img.made) streamRss.push({ label: img.label, rssMiB: r.rssKiB / 1024 });
      }
    }
    if (img.made) {
      const base = fastest(bases);
      rows.push({ image: label, method: `convert (${base.convertSeconds.toFixed(1)} s) + sha256sum + tar + sha256sum`, seconds: base.seconds, ratio: base.seconds / bare.seconds, sizeRatio: 1, rssMiB: base.rssKiB / 1024, extraDiskGiB: base.peakDisk / 2 ** 30 });
      if (!values.keep) rmSync(img.path);
    }
  }
  const lines = [
    `${cores} CPU(s) available; qcow2 images with real data (per 4 MiB stripe: 1 MiB random, 1 MiB log-like text, 2 MiB holes)${demo ? ' and the demo appliance base disk' : ''}, ${repeat === 1 ? '1 run' : `fastest of ${repeat} runs`} per method, warm page cache, zlib's default level everywhere; qemu-img ${qemuImgVersion()}, Node ${process.version}. packOva includes the SHA-256 of the VMDK and of the OVA and the tar layout.`,
    '',
    '| image | method | seconds | × bare convert | VMDK size × qemu-img\'s | peak RSS (MiB) | extra disk at peak (GiB) |',
    '|---|---|---:|---:|---:|---:|---:|',
    ...rows.map((r) => `| ${r.image} | ${r.method} | ${r.seconds.toFixed(1)} | ${r.ratio.toFixed(2)} | ${r.sizeRatio.toFixed(4)} | ${r.rssMiB.toFixed(0)} | ${r.extraDiskGiB.toFixed(2)} |`),
    '',
    ...goals.map((g) => `- stream writer, pool ${Math.min(2, cores)}, ${g}`),
  ];
  if (streamRss.length >= 2) {
    const delta = Math.max(...streamRss.map((r) => r.rssMiB)) - Math.min(...streamRss.map((r) => r.rssMiB));
    lines.push(`- stream writer peak RSS ${streamRss.map((r) => `${r.rssMiB.toFixed(0)} MiB at ${r.label}`).join(', ')}: Δ ${delta.toFixed(1)} MiB (goal ≤ 20 MB: ${delta * 1.048576 <= 20 ? 'met' : '**not met**'})`);
  }
  for (const n of notes) lines.push(`- ${n}`);
  process.stdout.write(`${lines.join('\n')}\n`);
}
function qemuImgVersion(): string {
  return /version (\S+)/.exec(execFileSync('qemu-img', ['--version'], { encoding: 'utf8' }))?.[1] ?? 'unknown';
}

await main();
