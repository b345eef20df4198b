/**
 * OVA packing benchmark: packOva vs a bare `qemu-img convert` of the same image (the floor) and vs the
 * three-step baseline (convert to a VMDK file, sha256sum it for the manifest, tar, sha256sum the OVA).
 *
 *   npm run bench -- --only ova-pack [--quick]
 *   node build/bench/ova-pack.js [--quick] [--sizes 2,8] [--repeat 1] [--dir /var/tmp/labforge-bench-ova]
 *
 * --quick: one 1 GiB image (--sizes 1) instead of 2 and 8 GiB; the same methods and baseline.
 *
 * With --repeat N every method runs N times (interleaved) and the fastest run counts. "× its own convert"
 * divides a method's total by the qemu-img conversion inside that same run: the cost of everything but
 * the conversion, which stays meaningful on a machine whose load changes between runs.
 *
 * Images are qcow2 with real data in them: per 4 MiB stripe, 1 MiB random bytes (incompressible), 1 MiB
 * log-like text (compressible) and 2 MiB never written (holes). packOva runs in a child process so that its
 * peak RSS is its own; qemu-img's peak RSS is measured with GNU time.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { packOva } from '../actions/lib/ova-pack.js';

const MiB = 1024 * 1024;

function makeImage(path: string, gib: number): void {
  if (existsSync(path)) return;
  const raw = `${path}.raw`;
  const fd = openSync(raw, 'w');
  const random = Buffer.alloc(MiB);
  const text = Buffer.alloc(MiB);
  let line = 0;
  try {
    for (let off = 0; off < gib * 1024 * MiB; off += 4 * MiB) {
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

interface Row {
  size: string;
  method: string;
  seconds: number;
  ratio: number;
  /** Total over the convert inside this same run: the cost of everything but the conversion, load-independent. */
  ownRatio: number;
  rssMiB: number;
  peakDiskGiB: number;
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

async function child(image: string, out: string): Promise<void> {
  const t0 = performance.now();
  const r = await packOva({ image, out, appliance: 'demo-lab', buildType: 'standard', version: '1.0.0', gitSha: '0000000', os: { cimId: 96, vmwareOsType: 'debian11_64Guest', description: 'Debian' }, cpus: 2, memoryMiB: 1024 });
  process.stdout.write(JSON.stringify({ seconds: (performance.now() - t0) / 1000, rssKiB: process.resourceUsage().maxRSS, size: r.size, convertSeconds: r.timings.convertSeconds, hashSeconds: r.timings.hashSeconds }));
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false }, sizes: { type: 'string' }, repeat: { type: 'string', default: '1' }, dir: { type: 'string', default: '/var/tmp/labforge-bench-ova' }, child: { type: 'string', multiple: true }, keep: { type: 'boolean' } } });
  if (values.child) return child(values.child[0]!, values.child[1]!);
  const dir = values.dir!;
  mkdirSync(dir, { recursive: true });
  const rows: Row[] = [];
  const repeat = Number(values.repeat);
  if (!Number.isInteger(repeat) || repeat < 1) throw new Error(`--repeat: '${values.repeat}' is not a positive whole number`);
  const sizes = (values.sizes ?? (values.quick ? '1' : '2,8')).split(',').map(Number);
  if (sizes.some((g) => !(g > 0))) throw new Error(`--sizes: '${values.sizes}' is not a list of positive GiB sizes`);
  for (const gib of sizes) {
    const image = join(dir, `image-${gib}g.qcow2`);
    process.stderr.write(`${gib} GiB: making the image…\n`);
    makeImage(image, gib);
    const qcow2Size = statSync(image).size;
    const work = join(dir, `work-${gib}g`);
    rmSync(work, { recursive: true, force: true });
    mkdirSync(work);

    const fastest = <T extends { seconds: number }>(runs: T[]) => runs.reduce((a, b) => (b.seconds < a.seconds ? b : a));
    const bares: { seconds: number; rssKiB: number }[] = [];
    const packs: { seconds: number; rssKiB: number; size: number; convertSeconds: number; hashSeconds: number }[] = [];
    const bases: { seconds: number; convertSeconds: number; rssKiB: number; peakDisk: number }[] = [];
    let vmdkSize = 0;
    for (let i = 0; i < repeat; i++) {
      process.stderr.write(`${gib} GiB (${i + 1}/${repeat}): bare qemu-img convert…\n`);
      bares.push(timed('qemu-img', ['convert', '-O', 'vmdk', '-o', 'subformat=streamOptimized', image, join(work, 'bare.vmdk')]));
      vmdkSize = statSync(join(work, 'bare.vmdk')).size;
      rmSync(join(work, 'bare.vmdk'));

      process.stderr.write(`${gib} GiB (${i + 1}/${repeat}): packOva…\n`);
      const out = join(work, 'packed.ova');
      const pr = spawnSync(process.execPath, [process.argv[1]!, '--child', image, '--child', out], { encoding: 'utf8', maxBuffer: 64 * MiB });
      if (pr.status !== 0) throw new Error(`packOva child failed: ${pr.stderr}`);
      packs.push(JSON.parse(pr.stdout));
      rmSync(work, { recursive: true, force: true });
      mkdirSync(work);

      process.stderr.write(`${gib} GiB (${i + 1}/${repeat}): baseline convert + sha256sum + tar + sha256sum…\n`);
      bases.push(baseline(image, work));
    }
    rmSync(work, { recursive: true, force: true });
    const bare = fastest(bares);
    const packed = fastest(packs);
    const base = fastest(bases);

    const label = `${gib} GiB (qcow2 ${(qcow2Size / 2 ** 30).toFixed(2)} GiB, vmdk ${(vmdkSize / 2 ** 30).toFixed(2)} GiB)`;
    rows.push({ size: label, method: 'qemu-img convert (floor)', seconds: bare.seconds, ratio: 1, ownRatio: 1, rssMiB: bare.rssKiB / 1024, peakDiskGiB: vmdkSize / 2 ** 30 });
    rows.push({ size: label, method: `packOva (convert ${packed.convertSeconds.toFixed(1)} s + hashing ${packed.hashSeconds.toFixed(1)} s)`, seconds: packed.seconds, ratio: packed.seconds / bare.seconds, ownRatio: packed.seconds / packed.convertSeconds, rssMiB: packed.rssKiB / 1024, peakDiskGiB: packed.size / 2 ** 30 });
    rows.push({ size: label, method: `convert (${base.convertSeconds.toFixed(1)} s) + sha256sum + tar + sha256sum`, seconds: base.seconds, ratio: base.seconds / bare.seconds, ownRatio: base.seconds / base.convertSeconds, rssMiB: base.rssKiB / 1024, peakDiskGiB: base.peakDisk / 2 ** 30 });
    if (!values.keep) rmSync(image);
  }
  const floor = rows.filter((r) => r.method.startsWith('packOva'));
  const worst = Math.max(...floor.map((r) => r.ratio));
  const lines = [
    `qcow2 images with real data (per 4 MiB stripe: 1 MiB random, 1 MiB log-like text, 2 MiB holes), ${repeat === 1 ? '1 run' : `fastest of ${repeat} runs`} per method, warm page cache; qemu-img ${qemuImgVersion()}, Node ${process.version}`,
    '',
    '| image | method | seconds | × bare convert | × its own convert | peak RSS (MiB) | extra disk at peak (GiB) |',
    '|---|---|---:|---:|---:|---:|---:|',
    ...rows.map((r) => `| ${r.size} | ${r.method} | ${r.seconds.toFixed(1)} | ${r.ratio.toFixed(2)} | ${r.ownRatio.toFixed(2)} | ${r.rssMiB.toFixed(0)} | ${r.peakDiskGiB.toFixed(2)} |`),
  ];
  lines.push('', `goal: packOva ≤ 1.15× a bare convert: ${floor.map((r) => `${r.ratio.toFixed(2)}× at ${r.size.split(' (')[0]}`).join(', ')} — ${worst <= 1.15 ? 'met' : '**not met**'}`);
  process.stdout.write(`${lines.join('\n')}\n`);
}

function qemuImgVersion(): string {
  return /version (\S+)/.exec(execFileSync('qemu-img', ['--version'], { encoding: 'utf8' }))?.[1] ?? 'unknown';
}

await main();
