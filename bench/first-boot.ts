/**
 * First-boot benchmark: a cold boot of the standard image vs the pre-warmed one, each to the guest
 * orchestrator's ready line, several runs, and the ratio pre-warmed / standard.
 *
 *   npm run build && node build/bench/first-boot.js [--runs 3] [--dir /var/tmp/labforge-bench-first-boot]
 *
 * The appliance is the tiny test guest (test/guest/build-guest.sh): Debian, systemd, the hedgehog-lab
 * orchestrator with the test-lab driver (its init writes and checksums simulated switch disks; its resume
 * restarts the lab service on the existing disks). The standard image is the tiny guest as built (marker
 * `standard`); the pre-warmed one is made from it by vlab-warm (the same module as the action). Every boot
 * is cold (a fresh QEMU, -snapshot so that the image stays pristine) and ends at the serial console line
 *   hedgehog-lab: ready build-type=<t> mode=<init|resume> seconds=<lab work> uptime=<s>
 * Time to ready is measured on the host from QEMU's start; the orchestrator's own `seconds` (lab work) and
 * `uptime` split it into OS boot and lab work. Runs alternate standard / pre-warmed, so that load from other
 * processes hits both alike. KVM is used when usable, else TCG.
 */
import { mkdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { defaultRepoRoot, ensureApplianceGuest, tinyGuestWarmOptions, type ApplianceGuest } from '../actions/lib/pipeline.js';
import { kvmAvailable, startVm } from '../actions/lib/qemu-vm.js';
import { warmImage } from '../actions/lib/vlab-warm.js';

interface BootRun {
  image: 'standard' | 'prewarmed';
  run: number;
  /** Host wall clock from QEMU start to the ready line, seconds. */
  toReady: number;
  /** The orchestrator's lab work (init or resume + readiness), seconds. */
  labSeconds: number;
  /** Guest uptime at ready, seconds. */
  uptime: number;
  mode: string;
}

const { values } = parseArgs({ options: { runs: { type: 'string', default: '3' }, dir: { type: 'string', default: '/var/tmp/labforge-bench-first-boot' } } });
const runs = Number(values.runs);
if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs: '${values.runs}' is not a positive whole number`);
const dir = values.dir!;
mkdirSync(dir, { recursive: true });
const accelerator = kvmAvailable() ? 'kvm' : 'tcg';
const log = (line: string) => process.stderr.write(`${line}\n`);

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

async function prewarmedImage(guest: ApplianceGuest): Promise<{ path: string; warmSeconds?: number; initSeconds?: number }> {
  const path = join(dir, `prewarmed-${guest.dir.split('/').pop()}.qcow2`);
  if (existsSync(path)) return { path };
  log(`warming ${guest.image} → ${path} (${accelerator})`);
  const r = await warmImage(
    tinyGuestWarmOptions(guest, { image: guest.image, output: path, accelerator, version: '0.0.0-bench' }),
    { log: () => undefined },
  );
  log(`warm: ${r.warmSeconds} s (${JSON.stringify(r.timeline)})`);
  return { path, warmSeconds: r.warmSeconds, ...(r.timeline['init'] !== undefined ? { initSeconds: r.timeline['init'] } : {}) };
}

async function coldBoot(guest: ApplianceGuest, image: string, kind: BootRun['image'], run: number): Promise<BootRun> {
  const vm = await startVm({
    image,
    accelerator,
    memoryMiB: 1024,
    cpus: 2,
    snapshot: true,
    serialLog: join(dir, `serial-${kind}-${run}.log`),
    extraArgs: ['-kernel', guest.kernel, '-initrd', guest.initrd, '-append', guest.kernelCmdline],
  });
  try {
    const m = await vm.waitForSerial(/hedgehog-lab: ready build-type=(\S+) mode=(\S+) seconds=(\d+) uptime=(\d+)/, 900_000);
    const toReady = Math.round((Date.now() - vm.startedAt) / 100) / 10;
    return { image: kind, run, toReady, mode: m[2]!, labSeconds: Number(m[3]), uptime: Number(m[4]) };
  } finally {
    await vm.kill();
  }
}

const repoRoot = defaultRepoRoot();
const guest = await ensureApplianceGuest(repoRoot, log);
const warm = await prewarmedImage(guest);
const results: BootRun[] = [];
for (let i = 1; i <= runs; i++) {
  for (const [kind, image] of [
    ['standard', guest.image],
    ['prewarmed', warm.path],
  ] as const) {
    const r = await coldBoot(guest, image, kind, i);
    log(`run ${i} ${kind}: ready after ${r.toReady} s (mode=${r.mode}, lab work ${r.labSeconds} s, uptime ${r.uptime} s)`);
    results.push(r);
  }
}

const pick = (kind: BootRun['image']) => results.filter((r) => r.image === kind);
const row = (kind: BootRun['image']) => {
  const rs = pick(kind);
  const toReady = median(rs.map((r) => r.toReady));
  const lab = median(rs.map((r) => r.labSeconds));
  return { kind, runs: rs.map((r) => r.toReady.toFixed(1)).join(', '), toReady, lab, os: toReady - lab, mode: rs[0]!.mode };
};
const std = row('standard');
const pre = row('prewarmed');
const lines = [
  `first boot to "hedgehog-lab: ready" — tiny guest, ${accelerator}, ${runs} cold boots each (median)`,
  '',
  '| image | mode | runs (s) | median to ready (s) | lab work (s) | OS boot + service start (s) |',
  '|---|---|---|---|---|---|',
  `| standard | ${std.mode} | ${std.runs} | ${std.toReady.toFixed(1)} | ${std.lab.toFixed(1)} | ${std.os.toFixed(1)} |`,
  `| pre-warmed | ${pre.mode} | ${pre.runs} | ${pre.toReady.toFixed(1)} | ${pre.lab.toFixed(1)} | ${pre.os.toFixed(1)} |`,
  '',
  `ratio pre-warmed / standard (time to ready): ${(pre.toReady / std.toReady).toFixed(2)}  (lab work alone: ${(pre.lab / Math.max(std.lab, 0.1)).toFixed(2)})`,
];
if (warm.warmSeconds !== undefined) lines.push(`warm stage (build time, once per release): ${warm.warmSeconds} s, of which init ${warm.initSeconds ?? '?'} s`);
process.stdout.write(`${lines.join('\n')}\n`);
process.stdout.write(`${JSON.stringify({ accelerator, runs: results, standard: std, prewarmed: pre, ratio: pre.toReady / std.toReady })}\n`);
