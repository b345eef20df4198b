/**
 * Runs a Packer build the way a CI job needs it: the appliance checked (manifest, variable contract) before
 * anything slow, the per-build key and seed, preflight, the base image, `packer init` (where the Packer
 * version has it), `validate`, then `build -machine-readable` parsed live into timestamped lines grouped by
 * phase (packer-process.ts), with an SSH watchdog (packer-watchdog.ts), a timeout, cancellation that takes
 * Packer's whole process group (and so QEMU) down, and finally the OVA.
 *
 * The shape follows packer-plugin-qemu's steps (step-sequence.ts): each step has a run and a cleanup,
 * and the cleanups of every started step run in reverse whatever happens.
 */
import { mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { checkPackerTemplate } from './packer-template-check.js';
import { InputError, checkInputFile, checkOutputDirectory } from './inputs.js';
import { logText } from './escape.js';
import { packOva, type PackOvaResult } from './ova-pack.js';
import type { GuestOs } from './ovf-descriptor.js';
import { applianceVariables, clearDirectory, declaredVariables, makeBuildSeed, prepareApplianceBuild, removeBuildSeed, runBaseImage, templateForPacker, type ApplianceBuild, type BuildSeed } from './packer-appliance.js';
import { pluginCacheKey, pluginCacheKeyPrefix, type PluginCacheStore } from './packer-plugin-cache.js';
import { PackerBuildError, findImage, packerHasInit, packerVersion, runPackerCommand, stopProcessGroup, terminalReporter, type BuildLeftovers, type BuildReporter, type PackerRun } from './packer-process.js';
import { SshWatchdog } from './packer-watchdog.js';
import { assertPreflight, buildNeeds, profileDiskNeeds, type PreflightReport } from './preflight.js';
import { artifactBaseName } from './release-names.js';
import type { SshDiagnosis } from './ssh-diagnose.js';
import { runSteps, StepFailedError, type Step, type StepTiming } from './step-sequence.js';
import { SBOM_SUFFIX, buildGitSha, sbomForBuild, type SbomFile } from './sbom.js';
import { checkPrivateKeyFile, type PackerBuildOptions } from './packer-build-inputs.js';
import type { PackerBuildResult } from './packer-build-outputs.js';

export { declaredVariables } from './packer-appliance.js';
export { PackerBuildError, cleanupLeftovers, packerHasInit, packerVersion, stopProcessGroup, terminalReporter, type BuildLeftovers, type BuildReporter, type PhaseTiming } from './packer-process.js';
export type { SshWatchdogOptions } from './packer-watchdog.js';
export { ON_ERROR, PACKAGES, parseVars, readPackerBuildOptions, type PackerBuildOptions } from './packer-build-inputs.js';
export { buildOutputs, buildSummaryRows, type PackerBuildResult } from './packer-build-outputs.js';

/** What the OVF of a plain template's build declares (it has no manifest); appliances declare their own. */
const PLAIN_TEMPLATE_OS: GuestOs = { cimId: 101, vmwareOsType: 'otherLinux64Guest', description: 'Linux (64-bit)' };

/** Dependencies a caller may replace (the action passes @actions/cache; tests pass their own). */
export interface PackerBuildDeps {
  pluginCacheStore?: PluginCacheStore;
  reporter?: BuildReporter;
  signal?: AbortSignal;
  /** Called once Packer runs and when the work directory exists (the action saves them for `post:`). */
  onLeftovers?: (left: BuildLeftovers) => void;
  /** Where PACKER_PLUGIN_PATH lives (default ~/.cache/labforge/packer-plugins). */
  pluginPath?: string;
  /** Skip the preflight (tests of the stream parsing on machines without qemu). */
  skipPreflight?: boolean;
}

interface BuildState {
  options: PackerBuildOptions;
  cwd: string;
  workDir?: string;
  buildLog: string;
  env: NodeJS.ProcessEnv;
  packerVersion?: string;
  pluginKey?: string;
  pluginHit?: string;
  preflight?: PreflightReport;
  run?: PackerRun;
  image?: string;
  ova?: PackOvaResult;
  sbom?: SbomFile;
  notes: string[];
  pgid?: number;
  watchdog?: SshDiagnosis;
  /** The template Packer gets (a Packer-1.6 copy, see templateForPacker). */
  packerTemplate?: string;
  seed?: BuildSeed;
  baseImageVars: Record<string, string>;
}

/**
 * Runs the whole build. Resolves with the image, the OVA and the timings; rejects with a
 * {@link PackerBuildError} (preflight failures as a PreflightError, bad inputs as an InputError).
 */
export async function runPackerBuild(options: PackerBuildOptions, deps: PackerBuildDeps = {}): Promise<PackerBuildResult> {
  const started = Date.now();
  const reporter = deps.reporter ?? terminalReporter((l) => process.stderr.write(`${logText(l)}\n`));
  const signal = deps.signal ?? new AbortController().signal;
  const packer = options.packer ?? 'packer';
  const cwd = resolve(options.workingDirectory ?? process.cwd());
  // An appliance is loaded and checked (manifest, resources, KVM, console password, the template's variable
  // contract) before anything slow starts; its manifest supplies the defaults of the inputs not given.
  let appliance: ApplianceBuild | undefined;
  if (options.appliance) {
    appliance = await prepareApplianceBuild({ ...options.appliance, dir: resolve(cwd, options.appliance.dir) }, options.accelerator);
    const app = appliance.appliance;
    const given = new Set(options.explicit ?? []);
    options = {
      ...options,
      template: app.template,
      ...(given.has('timeout-minutes') ? {} : { timeoutMinutes: app.build.timeoutMinutes }),
      ...(given.has('expected-image-gib') ? {} : { expectedImageGiB: app.build.expectedImageGiB }),
      ...(given.has('vm-memory-mib') ? {} : { vmMemoryMiB: appliance.resources.memoryMiB }),
      watchdog: {
        ...options.watchdog,
        ...(given.has('ssh-watchdog-seconds') ? {} : { afterSeconds: app.build.sshWatchdogSeconds }),
        ...(given.has('ssh-username') ? {} : { username: app.build.user }),
      },
    };
  }
  const template = resolve(cwd, options.template);
  if (!(await stat(template).catch(() => undefined))) throw new InputError('template', `${options.template} does not exist`, 'give a Packer template file or a directory of *.pkr.hcl files');
  if (!options.appliance) checkPackerTemplate(template, 'template', options.template);
  // The files and directories the inputs name, checked before anything slow (a device or a FIFO is never read).
  for (const f of options.varFiles) checkInputFile(resolve(cwd, f), 'var-files', { what: 'a .pkrvars.hcl file (list existing variable files)' });
  if (options.watchdog.privateKeyFile) checkPrivateKeyFile(options.watchdog.privateKeyFile);
  if (options.cacheDir && options.cacheDir !== 'temporary') checkOutputDirectory(resolve(cwd, options.cacheDir), 'cache-dir');
  const outputDir = checkOutputDirectory(resolve(cwd, options.outputDir), 'output-dir');
  await mkdir(outputDir, { recursive: true });
  const state: BuildState = { options, cwd, buildLog: join(outputDir, 'packer-build.log'), env: {}, notes: [], baseImageVars: {} };
  const pluginPath = deps.pluginPath ?? join(process.env.HOME ?? tmpdir(), '.cache', 'labforge', 'packer-plugins');
  const graceMs = (options.graceSeconds ?? 8) * 1000;
  // Packer's image output directory of an appliance build (Packer refuses to reuse one).
  const imageDir = join(outputDir, 'image');
  const opts = options;
  const applianceName = appliance?.appliance.name ?? 'hedgehog-lab';

  const commonArgs = async (s: BuildState): Promise<string[]> => {
    const declared = await declaredVariables(template);
    let vars: Record<string, string> = {};
    if (appliance) {
      vars = applianceVariables(appliance, {
        version: opts.version,
        buildType: opts.buildType,
        accelerator: opts.accelerator,
        seedDir: s.seed!.seed.dir,
        privateKeyFile: s.seed!.privateKeyFile,
        outputDirectory: imageDir,
        declared,
        baseImage: s.baseImageVars,
        userVars: opts.vars,
      });
    } else {
      if (declared.has('build_type')) vars.build_type = opts.buildType;
      if (declared.has('version')) vars.version = opts.version;
      if (declared.has('accelerator')) vars.accelerator = opts.accelerator;
      Object.assign(vars, opts.vars);
    }
    const args = Object.entries(vars).map(([k, v]) => `-var=${k}=${v}`);
    args.push(...opts.varFiles.map((f) => `-var-file=${resolve(cwd, f)}`));
    if (opts.only.length > 0) args.push(`-only=${opts.only.join(',')}`);
    return args;
  };
  const cacheDir = (workDir: string): string => {
    if (opts.cacheDir === 'temporary') return join(workDir, 'packer_cache');
    if (opts.cacheDir) return resolve(cwd, opts.cacheDir);
    return process.env.PACKER_CACHE_DIR || join(process.env.HOME ?? tmpdir(), '.cache', 'labforge', 'packer');
  };

  const steps: Step<BuildState>[] = [
    {
      name: 'workspace',
      run: async (s) => {
        s.workDir = await mkdtemp(join(tmpdir(), 'labforge-packer-'));
        await mkdir(join(s.workDir, 'tmp'));
        deps.onLeftovers?.({ workDir: s.workDir });
        s.env = {
          ...process.env,
          PACKER_LOG: '1',
          PACKER_LOG_PATH: s.buildLog,
          PACKER_NO_COLOR: '1',
          CHECKPOINT_DISABLE: '1',
          // Packer's temporary files (scripts, keys) land here and go with the work directory.
          TMPDIR: join(s.workDir, 'tmp'),
          // ISO downloads persist in the runner's cache (never a packer_cache/ in the checkout) unless asked otherwise.
          PACKER_CACHE_DIR: cacheDir(s.workDir),
          ...(options.pluginCache ? { PACKER_PLUGIN_PATH: pluginPath } : {}),
          ...(options.githubToken ? { PACKER_GITHUB_API_TOKEN: options.githubToken } : {}),
          ...(options.registryCredential ? { PKR_VAR_registry_auth: options.registryCredential } : {}),
        };
      },
      cleanup: async (s) => {
        if (s.workDir) await rm(s.workDir, { recursive: true, force: true });
      },
    },
    {
      // The per-build key and the seed that authorizes it (appliance builds): removed in every outcome.
      name: 'seed',
      skip: () => !appliance,
      run: async (s) => {
        s.seed = await makeBuildSeed(appliance!, { parentDir: s.workDir!, version: opts.version });
        reporter.line(`seed: ${appliance!.appliance.build.seed.format} user-data authorizing a new ed25519 key for ${appliance!.appliance.build.user}; login user ${appliance!.appliance.login.user} (${appliance!.passwordHash ? 'console password set, stored as its SHA-512 crypt hash' : 'password locked'})`);
      },
      cleanup: async (s) => removeBuildSeed(s.seed),
    },
    {
      name: 'preflight',
      // A validation needs no KVM, disk or memory: only a build does.
      skip: () => deps.skipPreflight === true || options.validateOnly === true,
      run: async (s) => {
        reporter.startGroup('preflight');
        try {
          s.preflight = await assertPreflight({
            accelerator: options.accelerator,
            outputDir,
            ...buildNeeds(options.expectedImageGiB, options.vmMemoryMiB),
            // An appliance's VM disk (its resource profile's disk-gib) can fill up to its full size beside the OVA.
            ...(appliance ? { ...profileDiskNeeds({ expectedImageGiB: options.expectedImageGiB, diskGiB: appliance.resources.diskGiB, profile: appliance.resources.name }), requiredCpus: appliance.resources.cpus, profileName: appliance.resources.name } : {}),
            packer,
            kvmDevice: options.kvmDevice,
          });
          for (const v of s.preflight.verdicts) reporter.line(`ok ${v.check}: ${v.detail}`);
        } finally {
          reporter.endGroup();
        }
      },
    },
    {
      name: 'plugins-restore',
      skip: () => !options.pluginCache,
      run: async (s) => {
        s.pluginKey = await pluginCacheKey(template);
        if (!s.pluginKey) {
          s.notes.push('plugin cache: the template has no required_plugins block; nothing to cache');
          return;
        }
        if (!deps.pluginCacheStore) {
          s.notes.push(`plugin cache: no cache service here; PACKER_PLUGIN_PATH=${pluginPath} is used as is`);
          return;
        }
        await mkdir(pluginPath, { recursive: true });
        s.pluginHit = await deps.pluginCacheStore.restore(pluginPath, s.pluginKey, [pluginCacheKeyPrefix()]).catch((e: Error) => {
          s.notes.push(`plugin cache: restore failed (${e.message}); plugins will be downloaded`);
          return undefined;
        });
        reporter.line(`plugin cache: ${s.pluginHit ? `restored ${s.pluginHit}` : `miss for ${s.pluginKey}`}`);
      },
    },
    {
      name: 'init',
      run: async (s) => {
        s.packerVersion = await packerVersion(packer);
        if (!packerHasInit(s.packerVersion)) {
          s.notes.push(`packer ${s.packerVersion} has no 'packer init' (it came in 1.7.0); its builders are built in`);
          reporter.line(`packer ${s.packerVersion}: no 'packer init' before 1.7.0, skipped (builders are built in)`);
          return;
        }
        reporter.startGroup('packer init');
        try {
          const run = await runPackerCommand({ packer, args: ['init', template], env: s.env, cwd, reporter, signal, graceMs, groupPhases: false });
          if (run.code !== 0) throw new PackerBuildError(`packer init failed: ${run.errors.join('; ') || `exit code ${run.code}`}`, s.buildLog);
        } finally {
          reporter.endGroup();
        }
      },
    },
    {
      name: 'base-image',
      skip: () => !appliance?.appliance.build.baseImage,
      run: async (s, stepSignal) => {
        reporter.startGroup('base image');
        try {
          s.baseImageVars = await runBaseImage(appliance!.appliance, { signal: stepSignal, log: reporter.line });
          for (const [k, v] of Object.entries(s.baseImageVars)) reporter.line(`base image: ${k}=${v}`);
        } finally {
          reporter.endGroup();
        }
      },
    },
    {
      name: 'template',
      run: async (s) => {
        s.packerTemplate = await templateForPacker(template, packerHasInit(s.packerVersion!), s.workDir!);
        if (s.packerTemplate !== template) reporter.line(`packer ${s.packerVersion}: using a copy of ${basename(template)} without its required_plugins file (Packer < 1.7 rejects it; its builders are built in)`);
        if (appliance) await clearDirectory(imageDir);
      },
    },
    {
      name: 'validate',
      run: async (s) => {
        const run = await runPackerCommand({ packer, args: ['validate', ...(await commonArgs(s)), s.packerTemplate!], env: s.env, cwd, reporter, signal, graceMs, groupPhases: false });
        if (run.cancelled) throw new PackerBuildError('cancelled during packer validate', s.buildLog);
        if (run.code !== 0) throw new PackerBuildError(`packer validate failed: ${run.errors.join('; ') || `exit code ${run.code}`}`, s.buildLog);
        reporter.line(`packer validate: ${basename(template)} is valid`);
      },
    },
    {
      name: 'build',
      skip: () => options.validateOnly === true,
      run: async (s) => {
        const watchdog = new SshWatchdog({ ...options.watchdog, ...(s.seed ? { privateKeyFile: s.seed.privateKeyFile } : {}) }, s.buildLog, reporter);
        const args = ['build', '-machine-readable', `-on-error=${options.onError}`, ...(await commonArgs(s)), s.packerTemplate!];
        try {
          s.run = await runPackerCommand({
            packer,
            args,
            env: s.env,
            cwd,
            reporter,
            signal,
            graceMs,
            timeoutMs: options.timeoutMinutes * 60_000,
            groupPhases: true,
            onStarted: (pgid) => {
              s.pgid = pgid;
              deps.onLeftovers?.({ pgid, workDir: s.workDir });
            },
            onEvent: (e) => watchdog.observe(e),
          });
        } finally {
          await watchdog.settle();
        }
        const verdict = watchdog.verdict;
        s.watchdog = verdict;
        const run = s.run;
        const because = verdict && !verdict.ok ? `\nSSH watchdog verdict: ${verdict.cause} - ${verdict.title}${verdict.remediation[0] ? `; fix: ${verdict.remediation[0]}` : ''}` : '';
        if (run.cancelled) throw new PackerBuildError(`the build was cancelled; Packer's process group was stopped${because}`, s.buildLog, verdict);
        if (run.timedOut) throw new PackerBuildError(`the build timed out after ${options.timeoutMinutes} minute(s) (timeout-minutes)${because}\nbuild log: ${s.buildLog}`, s.buildLog, verdict);
        if (run.code !== 0) {
          throw new PackerBuildError(`packer build failed: ${[...new Set(run.errors)].join('; ') || `exit code ${run.code}`}${because}\nbuild log: ${s.buildLog}`, s.buildLog, verdict);
        }
        s.image = await findImage(run.artifacts, cwd);
      },
      cleanup: async (s) => {
        if (s.pgid) await stopProcessGroup(s.pgid, graceMs);
      },
    },
    {
      name: 'plugins-save',
      skip: (s) => options.validateOnly === true || !options.pluginCache || !deps.pluginCacheStore || !s.pluginKey || s.pluginHit === s.pluginKey,
      run: async (s) => {
        await deps.pluginCacheStore!.save(pluginPath, s.pluginKey!).then(
          () => reporter.line(`plugin cache: saved ${s.pluginKey}`),
          (e: Error) => s.notes.push(`plugin cache: save failed (${e.message})`),
        );
      },
    },
    {
      name: 'package',
      skip: () => options.package === 'none' || options.validateOnly === true,
      run: async (s, stepSignal) => {
        if (!s.image) throw new PackerBuildError(`the build produced no qcow2 disk image to pack (artifacts: ${s.run?.artifacts.flatMap((a) => a.files).join(', ') || 'none'}); set package: none for builds without a disk`, s.buildLog);
        reporter.startGroup('package: OVA');
        try {
          s.ova = await packOva({
            image: s.image,
            out: join(outputDir, `${artifactBaseName(applianceName, options.buildType, options.version)}.ova`),
            appliance: applianceName,
            buildType: options.buildType,
            version: options.version,
            // A plain template has no manifest: the OVF then declares the defaults of pack-ova.
            os: appliance?.appliance.os ?? PLAIN_TEMPLATE_OS,
            cpus: appliance?.resources.cpus ?? 4,
            memoryMiB: appliance?.resources.memoryMiB ?? 8192,
            keepIntermediates: options.keepIntermediates,
            log: reporter.line,
            signal: stepSignal,
          });
          reporter.line(`OVA: ${s.ova.ova} (${s.ova.size} bytes, sha256 ${s.ova.sha256})`);
        } finally {
          reporter.endGroup();
        }
      },
    },
    {
      // The seal's package inventory, downloaded by the appliance template into its output directory.
      name: 'sbom',
      skip: () => !appliance || options.validateOnly === true,
      run: async (s) => {
        const base = artifactBaseName(applianceName, options.buildType, options.version);
        s.sbom = await sbomForBuild({
          inventory: join(imageDir, 'sbom-inventory.json'),
          out: join(outputDir, `${base}${SBOM_SUFFIX}`),
          subject: { appliance: applianceName, buildType: options.buildType, version: options.version, buildDate: s.ova?.properties.buildDate ?? new Date().toISOString(), gitSha: s.ova?.properties.gitSha || buildGitSha() },
          log: reporter.line,
        });
      },
    },
  ];

  let timeline: StepTiming[];
  try {
    timeline = await runSteps(steps, state, { signal });
  } catch (e) {
    if (e instanceof StepFailedError) {
      const cause = e.cause as Error & { buildLog?: string; watchdog?: SshDiagnosis };
      if (cause.name === 'PreflightError' || cause.name === 'InputError') throw cause;
      throw new PackerBuildError(`${e.step}: ${cause.message}`, cause.buildLog ?? state.buildLog, cause.watchdog, e.timeline);
    }
    throw e;
  }
  for (const n of state.notes) reporter.line(`note: ${n}`);
  const stepTiming = (name: string) => {
    const t = timeline.find((x) => x.step === name);
    return { seconds: t?.seconds ?? 0, ...(t && t.status !== 'skipped' ? { startedAt: t.startedAt } : {}) };
  };
  return {
    image: state.image,
    ova: state.ova,
    sbom: state.sbom,
    buildLog: state.buildLog,
    durationSeconds: Math.round((Date.now() - started) / 100) / 10,
    artifacts: state.run?.artifacts ?? [],
    phases: [
      { phase: 'preflight', ...stepTiming('preflight') },
      { phase: 'init', ...stepTiming('init') },
      { phase: 'validate', ...stepTiming('validate') },
      ...(state.run?.phases ?? []),
      { phase: 'package', ...stepTiming('package') },
    ],
    steps: timeline,
    versions: { ...(state.preflight?.versions ?? {}), ...(state.packerVersion ? { packer: state.packerVersion } : {}) },
    watchdog: state.watchdog,
    notes: state.notes,
  };
}
