/**
 * The main job on local defaults: the flow build.yml runs, with the same modules, inputs and order.
 *
 *   detect → packer-build (the appliance's standard image) → vlab-warm (pre-warmed builds) → pack the OVA
 *          → upload with checksums → download portal
 *
 * A pre-warmed build whose bucket already holds the standard release of the same version starts from that
 * published OVA instead of building it again (pipeline-standard.ts); `fromStandard: 'never'` forces Packer.
 *
 * Everything appliance-specific comes from the appliance's manifest (default: the demo appliance,
 * packer/demo-lab): its template and resources, its build user and seed, the warm's commands and timeouts,
 * the OVF's OS. "Local defaults" are that appliance, the accelerator that works here (KVM if usable, else
 * TCG; an appliance that requires KVM is then refused), and a `file://` bucket under the output directory.
 */
import { existsSync } from 'node:fs';
import { copyFile, mkdir } from 'node:fs/promises';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkAccelerator, chooseResources, loadAppliance, readResourceOverrides, type Appliance, type ResourceChoice } from './appliance.js';
import { detectBuildType, type BuildDecision } from './build-decision.js';
import { readRegistryCredential, REGISTRY_CREDENTIAL_ENV } from './registry-credential.js';
import { checkOutputDirectory, checkVersion, inputsFrom, readBool, readChoice, readString, type InputGetter } from './inputs.js';
import { packOva, type PackOvaOptions, type PackOvaResult } from './ova-pack.js';
import { kvmAvailable } from './qemu-vm.js';
import { BUILD_TYPES, type BuildType } from './release-names.js';
import { runSteps, StepFailedError, type Step, type StepTiming } from './step-sequence.js';
import { readApplianceWarmOptions, warmImage, type WarmResult } from './vlab-warm.js';
import { uploadRelease, type UploadReleaseOptions, type UploadReleaseResult } from './release-upload.js';
import { assertPreflight, localPreflightOptions } from './preflight.js';
import { FROM_STANDARD, obtainStandardImage, type FromStandard } from './pipeline-standard.js';
import { parseDestination } from './upload-options.js';
import { SBOM_SUFFIX } from './sbom-publish.js';

export interface PipelineOptions {
  buildType: BuildType;
  version: string;
  /** The appliance directory (holding appliance.yml); default packer/demo-lab. */
  appliance: string;
  /** Profile and resource overrides (`profile`, `cpus`, `memory-mib`, `disk-gib`). */
  resources: ReturnType<typeof readResourceOverrides>;
  /** Where everything goes (default ./out): work files, the OVA, and the `bucket/` destination. */
  outDir: string;
  /** The repository root (the demo appliance, the guest scripts). */
  repoRoot: string;
  /** kvm when /dev/kvm is usable, else tcg. */
  accelerator: 'kvm' | 'tcg';
  /** Replace a release of the same version in the local bucket (default true: it is a scratch destination). */
  overwrite: boolean;
  /** The login user's console password (from $LABFORGE_CONSOLE_PASSWORD; only its hash reaches the image). */
  consolePassword?: string;
  /** USER:TOKEN for the registry the appliance's lab downloads from (from $LABFORGE_REGISTRY_CREDENTIAL), for the build and the warm. */
  registryCredential?: string;
  /**
   * Publish the OVA while it is packed (default true): the upload is the packing's part sink, so the pack
   * phase also sends the archive's body and the upload phase is what remains (head and tail, compose,
   * verify, publish, companions, catalog, portal). false: pack, then upload the finished file.
   */
  overlapUpload?: boolean;
  /** Pre-warmed builds: `auto` (default) warms the bucket's published standard OVA of the version when there is one; `never` always runs Packer. */
  fromStandard?: FromStandard;
  log?: (line: string) => void;
  signal?: AbortSignal;
}

export interface PipelinePhase {
  phase: string;
  seconds: number;
  status: StepTiming['status'];
  /** What the phase produced (a path, a URI), for the closing table. */
  result: string;
  /** When the phase started (ISO 8601; not for skipped phases), for the job summary's timeline. */
  startedAt?: string;
}

export interface PipelineResult {
  decision: BuildDecision;
  appliance: Appliance;
  resources: ResourceChoice;
  phases: PipelinePhase[];
  totalSeconds: number;
  /** The standard image: the one Packer built, or the one converted from the published standard OVA. */
  standardImage: string;
  /** Set when the standard image came from the published standard OVA: its SHA-256 and URI. */
  builtFrom?: { sha256: string; uri: string };
  /** The image that was packed (the pre-warmed one for pre-warmed builds). */
  image: string;
  warm?: WarmResult;
  ova: PackOvaResult;
  publish: UploadReleaseResult;
  bucketDir: string;
}

/** The repository root, from this module's location (bundled into cli/dist/index.js or run from source). */
export function defaultRepoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'packer'))) return dir;
    dir = dirname(dir);
  }
  return process.cwd();
}

/** The demo appliance of this repository: what `npm run demo` and CI build. */
export const defaultAppliance = (repoRoot = defaultRepoRoot()) => join(repoRoot, 'packer', 'demo-lab');

/** Reads the `labforge pipeline` flags. */
export function readPipelineOptions(get: InputGetter, env: NodeJS.ProcessEnv = process.env): PipelineOptions {
  const buildType = readChoice(get, 'build-type', BUILD_TYPES, 'standard');
  const versionRaw = readString(get, 'version', '0.1.0');
  const repoRoot = defaultRepoRoot();
  const password = (env.LABFORGE_CONSOLE_PASSWORD ?? '').trim();
  // Checked as packer-build and vlab-warm check their input (USER:TOKEN; the value is never repeated).
  const registryCredential = readRegistryCredential(inputsFrom({ 'registry-credential': (env[REGISTRY_CREDENTIAL_ENV] ?? '').trim() }));
  return {
    buildType,
    version: checkVersion(versionRaw, 'version'),
    appliance: resolve(readString(get, 'appliance', defaultAppliance(repoRoot))),
    resources: readResourceOverrides(get),
    outDir: checkOutputDirectory(resolve(readString(get, 'out', 'out')), 'out'),
    repoRoot,
    accelerator: kvmAvailable() ? 'kvm' : 'tcg',
    overwrite: readBool(get, 'overwrite', true),
    fromStandard: readChoice(get, 'from-standard', FROM_STANDARD, 'auto'),
    overlapUpload: readBool(get, 'overlap-upload', true),
    ...(password ? { consolePassword: password } : {}),
    ...(registryCredential ? { registryCredential } : {}),
  };
}

interface PipelineState {
  opts: PipelineOptions;
  log: (line: string) => void;
  work: string;
  appliance: Appliance;
  resources: ResourceChoice;
  decision?: BuildDecision;
  standardImage?: string;
  builtFrom?: { sha256: string; uri: string };
  image?: string;
  warm?: WarmResult;
  ova?: PackOvaResult;
  /** The SBOM of the image being packed (packer-build's, or the warm's), then its copy beside the OVA. */
  sbom?: string;
  publish?: UploadReleaseResult;
  /** The publish started by the pack step when it is overlapped with the packing. */
  publishing?: Promise<UploadReleaseResult>;
  results: Record<string, string>;
}

const detectStep: Step<PipelineState> = {
  name: 'detect',
  run: async (s) => {
    s.decision = await detectBuildType({ buildType: s.opts.buildType, version: s.opts.version, appliance: s.opts.appliance });
    s.results['detect'] = `${s.decision.appliance} ${s.decision.buildType} ${s.decision.version} (${s.decision.reason})`;
    s.log(`appliance ${s.appliance.name} (${relative(s.opts.repoRoot, s.appliance.dir) || s.appliance.dir}), profile ${s.resources.name}: ${s.resources.cpus} vCPU, ${s.resources.memoryMiB} MiB, ${s.resources.diskGiB} GiB`);
    s.log(`build type ${s.decision.buildType}, version ${s.decision.version}`);
  },
};

/** The `file://` bucket under the output directory: where the pipeline publishes (and finds the standard release). */
const bucketOf = (opts: PipelineOptions) => join(opts.outDir, 'bucket');

/** The standard image: packer-build as build.yml calls it, or (pre-warmed) the published standard OVA of the version. */
const buildStep: Step<PipelineState> = {
  name: 'build',
  run: async (s, signal) => {
    const o = s.opts;
    const got = await obtainStandardImage({
      applianceDir: o.appliance,
      appliance: s.appliance,
      resources: s.resources,
      overrides: o.resources,
      version: s.decision!.version,
      warm: s.decision!.warm,
      fromStandard: o.fromStandard ?? 'auto',
      destination: parseDestination(`file://${bucketOf(o)}`),
      accelerator: o.accelerator,
      ...(o.consolePassword ? { consolePassword: o.consolePassword } : {}),
      ...(o.registryCredential ? { registryCredential: o.registryCredential } : {}),
      work: s.work,
      log: (l) => s.log(`  ${l}`),
      signal,
    });
    s.standardImage = s.image = got.image;
    if (got.builtFrom) s.builtFrom = got.builtFrom;
    s.sbom = got.sbom;
    s.results['build'] = got.summary;
  },
};

/** vlab-warm with the appliance input, as build.yml calls it: the manifest supplies everything else. */
const warmStep: Step<PipelineState> = {
  name: 'warm',
  skip: (s) => !s.decision!.warm,
  run: async (s, signal) => {
    const d = s.decision!;
    const output = join(s.work, `${d.artifactName}.qcow2`);
    const options = await readApplianceWarmOptions(
      inputsFrom({ appliance: s.opts.appliance, image: s.standardImage!, output, accelerator: s.opts.accelerator, version: d.version, profile: s.opts.resources.profile, cpus: s.opts.resources.cpus, memory: s.opts.resources.memoryMiB, 'registry-credential': s.opts.registryCredential ?? '' }),
    );
    s.warm = await warmImage(options, { log: (l) => s.log(`  ${l}`), signal });
    s.image = s.warm.image!;
    s.sbom = s.warm.sbom?.path;
    s.results['warm'] = `${s.warm.image} (init ${s.warm.timeline['init'] ?? '?'} s)`;
  },
};

/** upload-artifact's options as build.yml passes them, for the `file://` bucket under the output directory. */
async function publishOptions(s: PipelineState): Promise<UploadReleaseOptions> {
  const bucketDir = bucketOf(s.opts);
  await mkdir(bucketDir, { recursive: true });
  const d = s.decision!;
  return {
    path: [s.ova?.ova ?? join(s.opts.outDir, `${d.artifactName}.ova`)],
    destination: parseDestination(`file://${bucketDir}`),
    parallelism: 4,
    chunkSizeMib: 64,
    makePublic: false,
    signedUrlHours: 0,
    appliance: s.appliance.name,
    version: d.version,
    buildType: d.buildType,
    overwrite: s.opts.overwrite,
    retentionKeep: 0,
    retentionDryRun: false,
    portal: true,
    firstBoot: d.firstBoot,
    login: d.login,
    ...(s.builtFrom ? { sourceSha256: s.builtFrom.sha256, sourceUri: s.builtFrom.uri } : {}),
    sbom: s.sbom ?? false,
    log: (l) => s.log(`  ${l}`),
  };
}

/**
 * pack-ova with the appliance: the OVF declares the manifest's OS and the chosen profile. Overlapped (the
 * default), the publish starts here with the packing as its source (release-overlap.ts): the phase ends when
 * the OVA is packed, by then most of it is published too; the upload step waits for the rest.
 */
const packStep: Step<PipelineState> = {
  name: 'pack',
  run: async (s, signal) => {
    const d = s.decision!;
    if (s.sbom) {
      // The SBOM goes beside the OVA, as <base>.cdx.json: the upload publishes it from there.
      const beside = join(s.opts.outDir, `${d.artifactName}${SBOM_SUFFIX}`);
      if (resolve(s.sbom) !== beside) await copyFile(s.sbom, beside);
      s.sbom = beside;
    }
    const pack: PackOvaOptions = {
      image: s.image!,
      out: join(s.opts.outDir, `${d.artifactName}.ova`),
      appliance: s.appliance.name,
      buildType: d.buildType,
      version: d.version,
      os: s.appliance.os,
      cpus: s.resources.cpus,
      memoryMiB: s.resources.memoryMiB,
      log: (l) => s.log(`  ${l}`),
      signal,
    };
    if (s.opts.overlapUpload === false) {
      s.ova = await packOva(pack);
    } else {
      let packed!: () => void;
      const packingEnded = new Promise<void>((res) => (packed = res));
      const publishing = uploadRelease({
        ...(await publishOptions(s)),
        path: [],
        packing: {
          out: pack.out,
          properties: { appliance: s.appliance.name, version: d.version, buildType: d.buildType },
          run: async (sink) => {
            try {
              s.ova = await packOva({ ...pack, partSink: sink });
            } finally {
              packed();
            }
          },
        },
      });
      publishing.catch(() => undefined); // awaited by the upload step (or below, when the packing failed)
      s.publishing = publishing;
      // Ends when the OVA is packed, or as soon as the publish fails (before or while packing).
      await Promise.race([packingEnded, publishing]);
      if (!s.ova) await publishing;
    }
    s.results['pack'] = `${s.ova!.ova} (${(s.ova!.size / 1024 / 1024).toFixed(0)} MiB, sha256 ${s.ova!.sha256.slice(0, 12)}…)${s.publishing ? ', published while packing' : ''}`;
    if (s.sbom) s.results['pack'] += ` + ${basename(s.sbom)}`;
  },
};

const uploadStep: Step<PipelineState> = {
  name: 'upload',
  run: async (s) => {
    s.publish = await (s.publishing ?? uploadRelease(await publishOptions(s)));
    s.results['upload'] = `${s.publish.uri}${s.publishing ? ' (overlapped with pack)' : ''}`;
    s.results['portal'] = s.publish.portal?.htmlUri ?? '';
  },
};

export const PIPELINE_STEPS: Step<PipelineState>[] = [detectStep, buildStep, warmStep, packStep, uploadStep];

/** Runs the whole pipeline. Rejects with an Error naming the failed phase (after cleaning up). */
export async function runPipeline(opts: PipelineOptions): Promise<PipelineResult> {
  const log = opts.log ?? (() => undefined);
  // The appliance is read and its resources chosen before anything slow: a bad manifest fails here.
  const appliance = await loadAppliance(opts.appliance);
  const resources = chooseResources(appliance, opts.resources);
  checkAccelerator(appliance, opts.accelerator, 'build');
  // Every program the pipeline runs, KVM, disk and memory (what `labforge doctor` checks): stop with the apt-get line.
  await assertPreflight(localPreflightOptions({ appliance, resources, outDir: opts.outDir, accelerator: opts.accelerator }));
  const work = join(opts.outDir, 'work', `${appliance.name}-${opts.buildType}-${opts.version}`);
  await mkdir(work, { recursive: true });
  const state: PipelineState = { opts, log, work, appliance, resources, results: {} };
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
  const phases: PipelinePhase[] = steps.map((t) => ({ phase: t.step, seconds: t.seconds, status: t.status, result: state.results[t.step] ?? (t.status === 'skipped' ? '(standard build: no warm)' : ''), ...(t.status !== 'skipped' ? { startedAt: t.startedAt } : {}) }));
  if (state.publish?.portal) phases.push({ phase: 'portal', seconds: 0, status: 'ok', result: `${state.publish.portal.htmlUri} (with upload)` });
  return {
    decision: state.decision!,
    appliance,
    resources,
    phases,
    totalSeconds: Math.round((Date.now() - started) / 100) / 10,
    standardImage: state.standardImage!,
    ...(state.builtFrom ? { builtFrom: state.builtFrom } : {}),
    image: state.image!,
    ...(state.warm ? { warm: state.warm } : {}),
    ova: state.ova!,
    publish: state.publish!,
    bucketDir: bucketOf(opts),
  };
}

/** The job summary's rows (`labforge pipeline` in a workflow step): the closing table's phases and total. */
export function pipelineSummaryRows(r: PipelineResult): [string, string][] {
  const rows: [string, string][] = r.phases.map((p) => [`phase ${p.phase}`, `${p.status === 'skipped' ? '-' : `${p.seconds.toFixed(1)} s`}${p.result ? ` · ${p.result}` : ''}`]);
  rows.push(['total', `${r.totalSeconds.toFixed(1)} s · ${r.appliance.name} ${r.decision.buildType} ${r.decision.version}`]);
  return rows;
}

/** The closing table: phase, seconds, what it produced. */
export function formatPipelineTable(r: PipelineResult): string {
  const rows = r.phases.map((p) => [p.phase, p.status === 'skipped' ? '-' : `${p.seconds.toFixed(1)} s`, p.result]);
  rows.push(['total', `${r.totalSeconds.toFixed(1)} s`, `${r.appliance.name} ${r.decision.buildType} ${r.decision.version}`]);
  const w0 = Math.max(5, ...rows.map((x) => x[0]!.length));
  const w1 = Math.max(7, ...rows.map((x) => x[1]!.length));
  const line = (a: string, b: string, c: string) => `${a.padEnd(w0)}  ${b.padStart(w1)}  ${c}`;
  const out = [line('phase', 'time', 'output'), line('-'.repeat(w0), '-'.repeat(w1), '-'.repeat(6)), ...rows.map(([a, b, c]) => line(a!, b!, c!))];
  out.push('', `Published to ${r.publish.destination}:`, ...r.publish.files.map((f) => `  ${f.uri}  (${f.size} bytes, sha256 ${f.sha256})`));
  if (r.publish.portal) out.push(`Portal: ${r.publish.portal.htmlUri}`, `        ${r.publish.portal.markdownUri}`);
  return out.join('\n');
}
