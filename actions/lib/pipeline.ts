/**
 * The main job on local defaults: the whole flow the release workflow runs, on this machine.
 *
 *   detect → build the standard image (Packer) → warm it (pre-warmed builds) → pack the OVA
 *          → upload with checksums → download portal
 *
 * "Local defaults" are: the tiny test guest (test/guest/build-guest.sh, Debian with the hedgehog-lab
 * orchestrator and the test-lab driver) as the appliance, the accelerator that works here (KVM if usable,
 * else TCG), and a `file://` bucket under the output directory. Every phase calls the same module as the
 * corresponding action (packer-build, vlab-warm, pack-ova, upload-artifact); the pipeline only wires them.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { detectBuildType, type BuildDecision } from './build-decision.js';
import { checkVersion, readBool, readChoice, readString, type InputGetter } from './inputs.js';
import { packOva, type PackOvaResult } from './ova-pack.js';
import { runPackerBuild, terminalReporter } from './packer-build.js';
import { kvmAvailable } from './qemu-vm.js';
import { BUILD_TYPES, type BuildType } from './release-names.js';
import { runSteps, StepFailedError, type Step, type StepTiming } from './step-sequence.js';
import { warmImage, type WarmOptions, type WarmResult } from './vlab-warm.js';
import { uploadRelease, type UploadReleaseResult } from './release-upload.js';
import { parseDestination } from './upload-options.js';

export interface PipelineOptions {
  buildType: BuildType;
  version: string;
  /** Where everything goes (default ./out): work files, the OVA, and the `bucket/` destination. */
  outDir: string;
  /** The repository root (templates, guest scripts). */
  repoRoot: string;
  /** kvm when /dev/kvm is usable, else tcg. */
  accelerator: 'kvm' | 'tcg';
  /** Replace a release of the same version in the local bucket (default true: it is a scratch destination). */
  overwrite: boolean;
  log?: (line: string) => void;
  signal?: AbortSignal;
}

/** guest.json of the tiny guest (see test/guest/build-guest.sh). */
export interface ApplianceGuest {
  dir: string;
  image: string;
  kernel: string;
  initrd: string;
  kernelCmdline: string;
  user: string;
  privateKey: string;
}

export interface PipelinePhase {
  phase: string;
  seconds: number;
  status: StepTiming['status'];
  /** What the phase produced (a path, a URI), for the closing table. */
  result: string;
}

export interface PipelineResult {
  decision: BuildDecision;
  phases: PipelinePhase[];
  totalSeconds: number;
  /** The standard image Packer built. */
  standardImage: string;
  /** The image that was packed (the pre-warmed one for pre-warmed builds). */
  image: string;
  warm?: WarmResult;
  ova: PackOvaResult;
  publish: UploadReleaseResult;
  bucketDir: string;
}

/** The repository root, from this module's location (bundled into build/cli.js or run from source). */
export function defaultRepoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'packer'))) return dir;
    dir = dirname(dir);
  }
  return process.cwd();
}

/** Reads the `labforge pipeline` flags. */
export function readPipelineOptions(get: InputGetter): PipelineOptions {
  const buildType = readChoice(get, 'build-type', BUILD_TYPES, 'standard');
  const versionRaw = readString(get, 'version', '0.1.0');
  return {
    buildType,
    version: checkVersion(versionRaw, 'version'),
    outDir: resolve(readString(get, 'out', 'out')),
    repoRoot: defaultRepoRoot(),
    accelerator: kvmAvailable() ? 'kvm' : 'tcg',
    overwrite: readBool(get, 'overwrite', true),
  };
}

/** Builds the tiny guest unless cached (test/guest/build-guest.sh) and returns its guest.json. */
export function ensureApplianceGuest(repoRoot: string, log: (line: string) => void = () => undefined): Promise<ApplianceGuest> {
  const script = join(repoRoot, 'test', 'guest', 'build-guest.sh');
  return new Promise((resolvePromise, reject) => {
    const child = execFile(script, [], { maxBuffer: 64 * 1024 * 1024, timeout: 30 * 60_000 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`${relative(process.cwd(), script)} failed: ${stderr.split('\n').slice(-15).join('\n')}`));
      const dir = stdout.trim().split('\n').pop() ?? '';
      readFile(join(dir, 'guest.json'), 'utf8')
        .then((text) => resolvePromise(JSON.parse(text) as ApplianceGuest))
        .catch((e: Error) => reject(new Error(`the guest build printed '${dir}', which has no guest.json (${e.message})`)));
    });
    let partial = '';
    child.stderr?.on('data', (d: Buffer) => {
      const lines = (partial + d.toString()).split('\n');
      partial = lines.pop() ?? '';
      for (const l of lines) log(`  ${l}`);
    });
  });
}

interface PipelineState {
  opts: PipelineOptions;
  log: (line: string) => void;
  work: string;
  decision?: BuildDecision;
  guest?: ApplianceGuest;
  standardImage?: string;
  image?: string;
  warm?: WarmResult;
  ova?: PackOvaResult;
  publish?: UploadReleaseResult;
  results: Record<string, string>;
}

/** The tiny guest boots without its first-boot service during the build and the warm (they initialize it). */
const skipFirstBoot = (g: ApplianceGuest) => `${g.kernelCmdline} hedgehog-lab.skip`;

/**
 * How the tiny guest is warmed (the pipeline and the first-boot benchmark): the orchestrator's build-time
 * init and readiness probe, sealed with the guest's own seal helper. The tiny guest keeps its test key
 * (tests and the pipeline log in with it); everything else is sealed. Its own boot service is skipped on
 * the kernel command line so that the warm's build-init is the only init.
 */
export function tinyGuestWarmOptions(g: ApplianceGuest, o: { image: string; output: string; accelerator: 'kvm' | 'tcg'; version: string }): WarmOptions {
  return {
    image: o.image,
    output: o.output,
    accelerator: o.accelerator,
    memoryMiB: 1024,
    cpus: 2,
    nested: false,
    sshUser: g.user,
    sshKey: readFileSync(g.privateKey, 'utf8'),
    initCommand: 'sudo -n /usr/local/sbin/hedgehog-lab build-init --lock-timeout 1800',
    readyCommand: 'sudo -n /usr/local/sbin/hedgehog-lab ready --wait 600',
    statusCommand: 'sudo -n /usr/local/sbin/hedgehog-lab status --json',
    sealCommand: 'sudo -n /usr/local/sbin/hedgehog-lab-seal',
    seal: true,
    initTimeoutMinutes: 30,
    readyTimeoutMinutes: 10,
    sshTimeoutMinutes: 5,
    shutdownTimeoutSeconds: 120,
    markerPath: '/etc/hedgehog-lab/build-type',
    manifestPath: '/var/lib/hedgehog-lab/warm-manifest.json',
    qemuArgs: ['-kernel', g.kernel, '-initrd', g.initrd, '-append', skipFirstBoot(g)],
    version: o.version,
  };
}

const detectStep: Step<PipelineState> = {
  name: 'detect',
  run: async (s) => {
    s.decision = await detectBuildType({ buildType: s.opts.buildType, version: s.opts.version, templatesDir: join(s.opts.repoRoot, 'packer') });
    s.results['detect'] = `${s.decision.buildType} ${s.decision.version} (${s.decision.reason})`;
    s.log(`build type ${s.decision.buildType}, version ${s.decision.version}; the release workflow would use ${relative(s.opts.repoRoot, s.decision.template)}`);
  },
};

const guestStep: Step<PipelineState> = {
  name: 'guest',
  run: async (s) => {
    s.guest = await ensureApplianceGuest(s.opts.repoRoot, s.log);
    s.results['guest'] = s.guest.image;
    s.log(`appliance base: tiny guest ${s.guest.image}`);
  },
};

const buildStep: Step<PipelineState> = {
  name: 'build',
  run: async (s, signal) => {
    const g = s.guest!;
    const packerOut = join(s.work, 'packer');
    await rm(packerOut, { recursive: true, force: true });
    const result = await runPackerBuild(
      {
        template: join(s.opts.repoRoot, 'test', 'fixtures', 'packer', 'tiny-guest', 'tiny-guest.pkr.hcl'),
        buildType: 'standard',
        version: s.decision!.version,
        vars: { image: g.image, kernel: g.kernel, initrd: g.initrd, cmdline: skipFirstBoot(g), ssh_private_key_file: g.privateKey, ssh_username: g.user, output_directory: packerOut },
        varFiles: [],
        only: [],
        accelerator: s.opts.accelerator,
        timeoutMinutes: 30,
        onError: 'cleanup',
        pluginCache: false,
        package: 'none',
        // Packer's cache (ISO copies, port locks) stays in the work directory, not in the current one.
        cacheDir: join(s.work, 'packer_cache'),
        outputDir: join(s.work, 'packer-logs'),
        expectedImageGiB: 4,
        vmMemoryMiB: 512,
        watchdog: { afterSeconds: 240, username: g.user, privateKeyFile: g.privateKey },
      },
      { reporter: terminalReporter((l) => s.log(`  ${l}`)), signal },
    );
    if (!result.image) throw new Error(`Packer finished without a disk image (log: ${result.buildLog})`);
    s.standardImage = result.image;
    s.image = result.image;
    s.results['build'] = result.image;
  },
};

const warmStep: Step<PipelineState> = {
  name: 'warm',
  skip: (s) => !s.decision!.warm,
  run: async (s, signal) => {
    const g = s.guest!;
    const output = join(s.work, `hedgehog-lab-prewarmed-${s.decision!.version}.qcow2`);
    s.warm = await warmImage(
      tinyGuestWarmOptions(g, { image: s.standardImage!, output, accelerator: s.opts.accelerator, version: s.decision!.version }),
      { log: (l) => s.log(`  ${l}`), signal },
    );
    s.image = s.warm.image!;
    s.results['warm'] = `${s.warm.image} (init ${s.warm.timeline['init'] ?? '?'} s)`;
  },
};

const packStep: Step<PipelineState> = {
  name: 'pack',
  run: async (s, signal) => {
    const d = s.decision!;
    s.ova = await packOva({
      image: s.image!,
      out: join(s.opts.outDir, `${d.artifactName}.ova`),
      buildType: d.buildType,
      version: d.version,
      cpus: 2,
      memoryMiB: 1024,
      log: (l) => s.log(`  ${l}`),
      signal,
    });
    s.results['pack'] = `${s.ova.ova} (${(s.ova.size / 1024 / 1024).toFixed(0)} MiB, sha256 ${s.ova.sha256.slice(0, 12)}…)`;
  },
};

const uploadStep: Step<PipelineState> = {
  name: 'upload',
  run: async (s) => {
    const bucketDir = join(s.opts.outDir, 'bucket');
    await mkdir(bucketDir, { recursive: true });
    const d = s.decision!;
    s.publish = await uploadRelease({
      path: [s.ova!.ova],
      destination: parseDestination(`file://${bucketDir}`),
      parallelism: 4,
      chunkSizeMib: 64,
      makePublic: false,
      signedUrlHours: 0,
      version: d.version,
      buildType: d.buildType,
      overwrite: s.opts.overwrite,
      retentionKeep: 0,
      retentionDryRun: false,
      portal: true,
      ...(s.warm ? { firstBoot: `resumes the lab (the warm proved it ready at build time; init took ${s.warm.timeline['init'] ?? '?'} s then)` } : {}),
      log: (l) => s.log(`  ${l}`),
    });
    s.results['upload'] = s.publish.uri;
    s.results['portal'] = s.publish.portal?.htmlUri ?? '';
  },
};

export const PIPELINE_STEPS: Step<PipelineState>[] = [detectStep, guestStep, buildStep, warmStep, packStep, uploadStep];

/** Runs the whole pipeline. Rejects with an Error naming the failed phase (after cleaning up). */
export async function runPipeline(opts: PipelineOptions): Promise<PipelineResult> {
  const log = opts.log ?? (() => undefined);
  const work = join(opts.outDir, 'work', `${opts.buildType}-${opts.version}`);
  await mkdir(work, { recursive: true });
  const state: PipelineState = { opts, log, work, results: {} };
  const started = Date.now();
  let steps: StepTiming[];
  try {
    steps = await runSteps(PIPELINE_STEPS, state, {
      ...(opts.signal ? { signal: opts.signal } : {}),
      onStepStart: (name) => log(`── ${name} ──`),
      onStepEnd: (t) => {
        if (t.status !== 'skipped') log(`   ${t.step}: ${t.status} in ${t.seconds} s`);
      },
    });
  } catch (e) {
    if (e instanceof StepFailedError) throw new Error(`pipeline failed at ${e.step}: ${e.cause.message}`, { cause: e });
    throw e;
  }
  const phases: PipelinePhase[] = steps.map((t) => ({ phase: t.step, seconds: t.seconds, status: t.status, result: state.results[t.step] ?? (t.status === 'skipped' ? '(standard build: no warm)' : '') }));
  if (state.publish?.portal) phases.push({ phase: 'portal', seconds: 0, status: 'ok', result: `${state.publish.portal.htmlUri} (with upload)` });
  return {
    decision: state.decision!,
    phases,
    totalSeconds: Math.round((Date.now() - started) / 100) / 10,
    standardImage: state.standardImage!,
    image: state.image!,
    ...(state.warm ? { warm: state.warm } : {}),
    ova: state.ova!,
    publish: state.publish!,
    bucketDir: join(opts.outDir, 'bucket'),
  };
}

/** The closing table: phase, seconds, what it produced. */
export function formatPipelineTable(r: PipelineResult): string {
  const rows = r.phases.map((p) => [p.phase, p.status === 'skipped' ? '-' : `${p.seconds.toFixed(1)} s`, p.result]);
  rows.push(['total', `${r.totalSeconds.toFixed(1)} s`, `${r.decision.buildType} ${r.decision.version}`]);
  const w0 = Math.max(5, ...rows.map((x) => x[0]!.length));
  const w1 = Math.max(7, ...rows.map((x) => x[1]!.length));
  const line = (a: string, b: string, c: string) => `${a.padEnd(w0)}  ${b.padStart(w1)}  ${c}`;
  const out = [line('phase', 'time', 'output'), line('-'.repeat(w0), '-'.repeat(w1), '-'.repeat(6)), ...rows.map(([a, b, c]) => line(a!, b!, c!))];
  out.push('', `Published to ${r.publish.destination}:`, ...r.publish.files.map((f) => `  ${f.uri}  (${f.size} bytes, sha256 ${f.sha256})`));
  if (r.publish.portal) out.push(`Portal: ${r.publish.portal.htmlUri}`, `        ${r.publish.portal.markdownUri}`);
  return out.join('\n');
}
