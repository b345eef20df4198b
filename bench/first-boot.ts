/**
 * The demo appliance's pre-warmed pipeline and its first boot: the whole `labforge pipeline --build-type
 * prewarmed` (per phase), then cold boots of the standard image and the pre-warmed one, each to the guest
 * orchestrator's ready line, several runs, and the ratio pre-warmed / standard.
 *
 *   npm run bench -- --only first-boot [--quick]
 *   node build/bench/first-boot.js [--quick] [--runs 3] [--dir /var/tmp/labforge-bench-first-boot] [--json]
 *
 * --quick: 1 cold boot of each image instead of 3 (the same pipeline, images and workload). --json adds a
 * JSON line with every run after the tables.
 *
 * The appliance is packer/demo-lab (Debian, cloud-init, the hedgehog-lab orchestrator with the test-lab
 * driver); its lab workload (simulated switches, their disk size, the readiness poll) is fixed in its
 * manifest and described with the results from the manifest and the guest scripts' own defaults
 * (bench/lib/lab-workload.ts): numbers are comparable only for the same workload. Every boot is
 * cold, as a hypervisor boots an imported disk (firmware → the disk's own GRUB, no -kernel; -snapshot keeps
 * the image pristine), and ends at the serial console line
 *   hedgehog-lab: ready build-type=<t> mode=<init|resume> seconds=<lab work> uptime=<s>
 * Time to ready is measured on the host from QEMU's start; the orchestrator's own `seconds` (lab work) and
 * `uptime` split it into OS boot and lab work. Runs alternate standard / pre-warmed, so that load from other
 * processes hits both alike. KVM is used when usable, else TCG.
 */
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { labSettingsLines } from '../actions/lib/appliance.js';
import { labWorkload } from './lib/lab-workload.js';
import { defaultAppliance, formatPipelineTable, runPipeline } from '../actions/lib/pipeline.js';
import { kvmAvailable, startVm } from '../actions/lib/qemu-vm.js';

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

const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false }, runs: { type: 'string' }, dir: { type: 'string', default: '/var/tmp/labforge-bench-first-boot' }, json: { type: 'boolean', default: false } } });
const runs = Number(values.runs ?? (values.quick ? '1' : '3'));
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

async function coldBoot(image: string, kind: BootRun['image'], run: number, memoryMiB: number, cpus: number): Promise<BootRun> {
  const vm = await startVm({ image, accelerator, memoryMiB, cpus, snapshot: true, serialLog: join(dir, `serial-${kind}-${run}.log`) });
  try {
    const m = await vm.waitForSerial(/hedgehog-lab: ready build-type=(\S+) mode=(\S+) seconds=(\d+) uptime=(\d+)/, 900_000);
    const toReady = Math.round((Date.now() - vm.startedAt) / 100) / 10;
    return { image: kind, run, toReady, mode: m[2]!, labSeconds: Number(m[3]), uptime: Number(m[4]) };
  } finally {
    await vm.kill();
  }
}

const out = join(dir, 'pipeline');
rmSync(out, { recursive: true, force: true });
log(`pipeline (pre-warmed, demo appliance, ${accelerator}) → ${out}`);
const pipeline = await runPipeline({ buildType: 'prewarmed', version: '0.0.0-bench', appliance: defaultAppliance(), resources: {}, outDir: out, repoRoot: process.cwd(), accelerator, overwrite: true, log: () => undefined });
const lab = labWorkload(labSettingsLines(pipeline.appliance, pipeline.resources), pipeline.appliance.lab.driver, process.cwd());
const workload = Object.entries(lab.settings)
  .map(([k, v]) => `${k}=${v}`)
  .join(', ');
const { cpus, memoryMiB } = pipeline.resources;
const results: BootRun[] = [];
for (let i = 1; i <= runs; i++) {
  for (const [kind, image] of [
    ['standard', pipeline.standardImage],
    ['prewarmed', pipeline.image],
  ] as const) {
    const r = await coldBoot(image, kind, i, memoryMiB, cpus);
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
  `Workload (\`${workload}\`): ${lab.description}`,
  '',
  `pre-warmed pipeline — demo appliance, ${accelerator}, ${cpus} vCPU / ${memoryMiB} MiB, base image cached`,
  '',
  '```',
  formatPipelineTable(pipeline).split('\n\nPublished')[0]!,
  '```',
  '',
  `first boot to "hedgehog-lab: ready" — demo appliance (the workload above), ${accelerator}, ${runs} cold boot${runs > 1 ? 's' : ''} each from the disk's own bootloader (median)`,
  '',
  '| image | mode | runs (s) | median to ready (s) | lab work (s) | OS boot + service start (s) |',
  '|---|---|---|---|---|---|',
  `| standard | ${std.mode} | ${std.runs} | ${std.toReady.toFixed(1)} | ${std.lab.toFixed(1)} | ${std.os.toFixed(1)} |`,
  `| pre-warmed | ${pre.mode} | ${pre.runs} | ${pre.toReady.toFixed(1)} | ${pre.lab.toFixed(1)} | ${pre.os.toFixed(1)} |`,
  '',
  `ratio pre-warmed / standard (time to ready): ${(pre.toReady / std.toReady).toFixed(2)}  (lab work alone: ${(pre.lab / Math.max(std.lab, 0.1)).toFixed(2)})`,
];
const met = (ok: boolean) => (ok ? 'met' : '**not met**');
const ratio = pre.toReady / std.toReady;
lines.push('', `goals: pipeline total ≤ 150 s: ${pipeline.totalSeconds.toFixed(0)} s, ${met(pipeline.totalSeconds <= 150)}; first boot pre-warmed / standard ≤ 0.5: ${ratio.toFixed(2)}, ${met(ratio <= 0.5)}`);
process.stdout.write(`${lines.join('\n')}\n`);
if (values.json) process.stdout.write(`${JSON.stringify({ accelerator, workload, pipeline: pipeline.phases, runs: results, standard: std, prewarmed: pre, ratio: pre.toReady / std.toReady })}\n`);
