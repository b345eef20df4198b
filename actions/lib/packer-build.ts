/**
 * Runs a Packer build the way a CI job needs it: preflight before anything slow, `packer init` (where the
 * Packer version has it), `validate`, then `build -machine-readable` parsed live into timestamped lines
 * grouped by phase, with an SSH watchdog, a timeout, cancellation that takes Packer's whole process group
 * (and so QEMU) down, and finally the OVA.
 *
 * The shape follows packer-plugin-qemu's steps (step-sequence.ts): each step has a run and a cleanup,
 * and the cleanups of every started step run in reverse whatever happens.
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { InputError, checkVersion, readBool, readChoice, readInt, readList, readRequired, readString, type InputGetter } from './inputs.js';
import { BUILD_TYPES, artifactBaseName, type BuildType } from './release-names.js';
import { ACCELERATORS, assertPreflight, compareVersions, type Accelerator, type PreflightReport } from './preflight.js';
import { ArtifactCollector, LineSplitter, parseMachineReadableLine, phaseOf, sshPortFrom, type PackerArtifact, type PackerEvent, type PackerPhase } from './packer-machine-readable.js';
import { pluginCacheKey, pluginCacheKeyPrefix, templateFiles, type PluginCacheStore } from './packer-plugin-cache.js';
import { packOva, type PackOvaResult } from './ova-pack.js';
import { diagnoseSsh, formatDiagnosis, type SshDiagnosis } from './ssh-diagnose.js';
import { runSteps, StepFailedError, type Step, type StepTiming } from './step-sequence.js';

export const ON_ERROR = ['cleanup', 'abort'] as const;
export const PACKAGES = ['ova', 'none'] as const;

/** Where the build's human-readable lines go: the job log (with groups) or a terminal. */
export interface BuildReporter {
  line: (text: string) => void;
  startGroup: (name: string) => void;
  endGroup: () => void;
}

/** A reporter for a terminal: groups become `── name ──` headers. */
export function terminalReporter(write: (line: string) => void): BuildReporter {
  return { line: write, startGroup: (name) => write(`── ${name} ──`), endGroup: () => undefined };
}

export interface SshWatchdogOptions {
  /** Diagnose once Packer has been waiting for SSH this long (seconds). 0 turns the watchdog off. */
  afterSeconds: number;
  /** The user Packer logs in as. */
  username: string;
  /** Private key file Packer uses (read when the watchdog fires). */
  privateKeyFile?: string;
  password?: string;
}

export interface PackerBuildOptions {
  /** A template file or a directory of `*.pkr.hcl` files. */
  template: string;
  buildType: BuildType;
  version: string;
  /** `-var` values (build_type, version and accelerator are added when the template declares them). */
  vars: Record<string, string>;
  varFiles: string[];
  /** `-only` builds. */
  only: string[];
  accelerator: Accelerator;
  timeoutMinutes: number;
  onError: (typeof ON_ERROR)[number];
  /** Exported as PACKER_GITHUB_API_TOKEN for `packer init` (never on a command line). */
  githubToken?: string;
  /** Restore and save PACKER_PLUGIN_PATH through `pluginCacheStore`. */
  pluginCache: boolean;
  /** Persistent PACKER_CACHE_DIR (ISOs) on a self-hosted runner. */
  cacheDir?: string;
  package: (typeof PACKAGES)[number];
  /** Where the build log and the OVA go (created if missing). */
  outputDir: string;
  /** Size estimate for the disk preflight, and the build VM's memory. */
  expectedImageGiB: number;
  vmMemoryMiB: number;
  watchdog: SshWatchdogOptions;
  /** Also `keep-intermediates` for the OVA packer. */
  keepIntermediates?: boolean;
  /** Seconds Packer gets to clean up after SIGTERM before its process group is killed (default 8). */
  graceSeconds?: number;
  /** Packer executable (default `packer`). */
  packer?: string;
  /** Directory Packer runs in (relative paths in templates resolve from it; default: the current one). */
  workingDirectory?: string;
  /** KVM device for the preflight (default /dev/kvm). */
  kvmDevice?: string;
}

export interface PhaseTiming {
  phase: PackerPhase | 'validate' | 'init' | 'package' | 'preflight';
  seconds: number;
}

export interface PackerBuildResult {
  /** The disk image Packer built (qcow2), if any. */
  image?: string;
  ova?: PackOvaResult;
  /** The PACKER_LOG file, kept. */
  buildLog: string;
  durationSeconds: number;
  artifacts: PackerArtifact[];
  /** Packer's own phases (from its UI lines) and labforge's steps. */
  phases: PhaseTiming[];
  steps: StepTiming[];
  versions: Record<string, string>;
  /** The SSH watchdog's verdict, when it ran. */
  watchdog?: SshDiagnosis;
  notes: string[];
}

/** The build failed; the message says why (Packer's errors, the SSH watchdog's verdict) and where the log is. */
export class PackerBuildError extends Error {
  constructor(
    message: string,
    readonly buildLog?: string,
    readonly watchdog?: SshDiagnosis,
    readonly steps: StepTiming[] = [],
  ) {
    super(message);
    this.name = 'PackerBuildError';
  }
}

/** Parses `key=value` lines (the `vars` input). */
export function parseVars(text: string): Record<string, string> {
  const vars: Record<string, string> = {};
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    if (eq <= 0) throw new InputError('vars', `'${line}' is not key=value`, 'write one key=value per line, e.g. disk_size=40960');
    const key = line.slice(0, eq).trim();
    if (!/^[A-Za-z_][A-Za-z0-9_-]*$/.test(key)) throw new InputError('vars', `'${key}' is not a variable name`, 'use letters, digits, _ and -');
    vars[key] = line.slice(eq + 1).trim();
  }
  return vars;
}

/** Reads and validates the packer-build inputs (action inputs and `labforge build` flags). */
export function readPackerBuildOptions(get: InputGetter): PackerBuildOptions {
  const buildType = readChoice(get, 'build-type', BUILD_TYPES, 'standard');
  const version = checkVersion(readRequired(get, 'version', 'give the appliance version, e.g. 1.4.0'), 'version');
  const timeoutMinutes = readInt(get, 'timeout-minutes', 120, { min: 1, max: 24 * 60 });
  const watchdogSeconds = readInt(get, 'ssh-watchdog-seconds', 300, { min: 0, max: 24 * 3600 });
  const githubToken = readString(get, 'github-token');
  const password = readString(get, 'ssh-password');
  return {
    template: readRequired(get, 'template', 'give the Packer template file or directory, e.g. packer/hedgehog-lab'),
    buildType,
    version,
    vars: parseVars(get('vars')),
    varFiles: readList(get, 'var-files'),
    only: readList(get, 'only'),
    accelerator: readChoice(get, 'accelerator', ACCELERATORS, 'kvm'),
    timeoutMinutes,
    onError: readChoice(get, 'on-error', ON_ERROR, 'cleanup'),
    githubToken: githubToken || undefined,
    pluginCache: readBool(get, 'plugin-cache', true),
    cacheDir: readString(get, 'cache-dir') || undefined,
    package: readChoice(get, 'package', PACKAGES, 'ova'),
    outputDir: readString(get, 'output-dir', 'labforge-output'),
    expectedImageGiB: readInt(get, 'expected-image-gib', 40, { min: 1, max: 16384 }),
    vmMemoryMiB: readInt(get, 'vm-memory-mib', 4096, { min: 128, max: 4 * 1024 * 1024 }),
    watchdog: {
      afterSeconds: watchdogSeconds,
      username: readString(get, 'ssh-username', 'packer'),
      privateKeyFile: readString(get, 'ssh-private-key-file') || undefined,
      password: password || undefined,
    },
    keepIntermediates: readBool(get, 'keep-intermediates', false),
    kvmDevice: readString(get, 'kvm-device') || undefined,
  };
}

/** Variables a template declares (`variable "name"` in HCL, `variables` in JSON). */
export async function declaredVariables(template: string): Promise<Set<string>> {
  const names = new Set<string>();
  for (const file of await templateFiles(template)) {
    const text = await readFile(file, 'utf8');
    if (file.endsWith('.json')) {
      const vars = (JSON.parse(text) as { variables?: Record<string, unknown>; variable?: Record<string, unknown> }).variables ?? {};
      for (const k of Object.keys(vars)) names.add(k);
    } else {
      for (const m of text.matchAll(/^\s*variable\s+"([^"]+)"/gm)) names.add(m[1]!);
    }
  }
  return names;
}

const processGroupAlive = (pgid: number): boolean => {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Stops a process group: SIGTERM (Packer then stops QEMU and removes its files), and SIGKILL for whatever
 * is left after `graceMs`. Resolves when the group is gone (or after a last SIGKILL).
 */
export async function stopProcessGroup(pgid: number, graceMs = 8000): Promise<void> {
  if (!processGroupAlive(pgid)) return;
  try {
    process.kill(-pgid, 'SIGTERM');
  } catch {
    /* gone */
  }
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline && processGroupAlive(pgid)) await sleep(100);
  if (processGroupAlive(pgid)) {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      /* gone */
    }
    for (let i = 0; i < 20 && processGroupAlive(pgid); i++) await sleep(50);
  }
}

/** What the `post:` step needs to clean up after a cancelled job (saved as action state). */
export interface BuildLeftovers {
  pgid?: number;
  workDir?: string;
}

/** Cleans up after a job that was cancelled mid-build: Packer's process group and the work directory. */
export async function cleanupLeftovers(left: BuildLeftovers, graceMs = 8000): Promise<string[]> {
  const done: string[] = [];
  if (left.pgid && processGroupAlive(left.pgid)) {
    await stopProcessGroup(left.pgid, graceMs);
    done.push(`stopped Packer's process group ${left.pgid}`);
  }
  if (left.workDir) {
    const exists = await stat(left.workDir).then(
      () => true,
      () => false,
    );
    if (exists) {
      await rm(left.workDir, { recursive: true, force: true });
      done.push(`removed ${left.workDir}`);
    }
  }
  return done;
}

interface PackerRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  errors: string[];
  artifacts: PackerArtifact[];
  phases: PhaseTiming[];
  timedOut: boolean;
  cancelled: boolean;
}

interface RunPackerCommandOptions {
  packer: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  cwd: string;
  reporter: BuildReporter;
  signal: AbortSignal;
  timeoutMs?: number;
  graceMs: number;
  onStarted?: (pgid: number) => void;
  onEvent?: (e: PackerEvent, phase: PackerPhase | undefined) => void;
  /** Group the live lines by Packer phase. */
  groupPhases: boolean;
}

const clock = (d: Date) => d.toISOString().slice(11, 19);

/** Runs one Packer command with `-machine-readable`, streaming its events as human lines. */
async function runPackerCommand(o: RunPackerCommandOptions): Promise<PackerRun> {
  const child = spawn(o.packer, o.args, { cwd: o.cwd, env: o.env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const pgid = child.pid;
  const started = new Promise<void>((res, rej) => {
    child.once('spawn', res);
    child.once('error', rej);
  });
  await started.catch((e: Error) => {
    throw new PackerBuildError(`cannot run ${o.packer} (${e.message}); install Packer`);
  });
  if (pgid !== undefined) o.onStarted?.(pgid);

  const artifacts = new ArtifactCollector();
  const errors: string[] = [];
  const phases: PhaseTiming[] = [];
  let phase: { name: PackerPhase; since: number } | undefined;
  let timedOut = false;
  let cancelled = false;
  const stdout = new LineSplitter();
  let stderrText = '';

  const enterPhase = (next: PackerPhase) => {
    if (phase?.name === next) return;
    const now = Date.now();
    if (phase) {
      phases.push({ phase: phase.name, seconds: Math.round((now - phase.since) / 100) / 10 });
      if (o.groupPhases) o.reporter.endGroup();
    }
    phase = { name: next, since: now };
    if (o.groupPhases) o.reporter.startGroup(`packer: ${next}`);
  };

  const handle = (line: string) => {
    const event = parseMachineReadableLine(line);
    if (!event) {
      if (line.trim() !== '') o.reporter.line(line);
      return;
    }
    if (event.kind === 'ui') {
      const next = phaseOf(event.text);
      if (next) enterPhase(next);
      else if (!phase && o.groupPhases) enterPhase('prepare');
      for (const l of event.text.replace(/^\n+/, '').replace(/\n+$/, '').split('\n')) o.reporter.line(`[${clock(event.time)}] ${event.level === 'error' ? 'ERROR ' : ''}${l}`);
      if (event.level === 'error' && !/Some builds didn't complete successfully|^\s*-->/.test(event.text)) errors.push(event.text.trim());
    } else if (event.kind === 'error') {
      errors.push(`${event.target ? `${event.target}: ` : ''}${event.text.trim()}`);
    }
    artifacts.add(event);
    o.onEvent?.(event, phase?.name);
  };

  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (d: string) => stdout.push(d).forEach(handle));
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d: string) => (stderrText += d));

  let stopping: Promise<void> | undefined;
  const stop = () => {
    if (pgid !== undefined && !stopping) stopping = stopProcessGroup(pgid, o.graceMs);
  };
  const onAbort = () => {
    cancelled = true;
    o.reporter.line(`[${clock(new Date())}] cancelled: stopping Packer (SIGTERM to its process group, SIGKILL after ${o.graceMs / 1000} s)`);
    stop();
  };
  if (o.signal.aborted) onAbort();
  else o.signal.addEventListener('abort', onAbort, { once: true });
  const timer = o.timeoutMs
    ? setTimeout(() => {
        timedOut = true;
        o.reporter.line(`[${clock(new Date())}] timeout: the build ran longer than ${Math.round(o.timeoutMs! / 60000)} minute(s); stopping Packer`);
        stop();
      }, o.timeoutMs)
    : undefined;

  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((res) => child.on('close', (c, s) => res([c, s])));
  if (timer) clearTimeout(timer);
  o.signal.removeEventListener('abort', onAbort);
  stdout.flush().forEach(handle);
  // Packer is gone; make sure nothing it started (QEMU) outlives it.
  if (pgid !== undefined && processGroupAlive(pgid)) stop();
  await stopping;
  if (phase) {
    phases.push({ phase: phase.name, seconds: Math.round((Date.now() - phase.since) / 100) / 10 });
    if (o.groupPhases) o.reporter.endGroup();
  }
  if (stderrText.trim()) errors.push(...stderrText.trim().split('\n').slice(-5));
  return { code, signal, errors, artifacts: artifacts.artifacts, phases, timedOut, cancelled };
}

/** Packer's version, from `packer version` (e.g. `1.6.6`). */
export async function packerVersion(packer = 'packer'): Promise<string> {
  return new Promise((res, rej) => {
    const child = spawn(packer, ['version'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', (e) => rej(new PackerBuildError(`cannot run ${packer} (${e.message}); install Packer`)));
    child.on('close', () => {
      const v = /Packer v(\d+\.\d+\.\d+)/.exec(out)?.[1];
      if (v) res(v);
      else rej(new PackerBuildError(`cannot read the Packer version from '${out.trim()}'`));
    });
  });
}

/** `packer init` exists from Packer 1.7.0. */
export const packerHasInit = (version: string) => compareVersions(version, '1.7.0') >= 0;

/** Finds the disk image among the artifacts: a `.qcow2` file, else a file qemu-img reads as qcow2. */
async function findImage(artifacts: PackerArtifact[], cwd: string): Promise<string | undefined> {
  const files = artifacts.flatMap((a) => a.files.map((f) => resolve(cwd, f)));
  const byName = files.find((f) => f.endsWith('.qcow2'));
  if (byName) return byName;
  for (const f of files) {
    const format = await new Promise<string>((res) => {
      const child = spawn('qemu-img', ['info', '--output=json', f], { stdio: ['ignore', 'pipe', 'ignore'] });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.on('error', () => res(''));
      child.on('close', () => {
        try {
          res((JSON.parse(out) as { format: string }).format);
        } catch {
          res('');
        }
      });
    });
    if (format === 'qcow2') return f;
  }
  return undefined;
}

/** Runs ssh-diagnose against the forwarded port when Packer waits for SSH too long. */
class SshWatchdog {
  private timer?: NodeJS.Timeout;
  private port?: number;
  private running?: Promise<void>;
  verdict?: SshDiagnosis;

  constructor(
    private readonly options: SshWatchdogOptions,
    private readonly buildLog: string,
    private readonly reporter: BuildReporter,
  ) {}

  observe(event: PackerEvent): void {
    if (event.kind !== 'ui') return;
    const port = sshPortFrom(event.text);
    if (port) this.port = port;
    if (/Waiting for SSH to become available/.test(event.text) && this.options.afterSeconds > 0 && !this.timer && !this.verdict) {
      this.timer = setTimeout(() => (this.running = this.fire()), this.options.afterSeconds * 1000);
    }
    if (/Connected to SSH!/.test(event.text)) this.stop();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Waits for a diagnosis in progress. */
  async settle(): Promise<void> {
    this.stop();
    await this.running;
  }

  private async portFromLog(): Promise<number | undefined> {
    const text = await readFile(this.buildLog, 'utf8').catch(() => '');
    let port: number | undefined;
    for (const line of text.split('\n')) port = sshPortFrom(line) ?? port;
    return port;
  }

  private async fire(): Promise<void> {
    const port = this.port ?? (await this.portFromLog());
    // Plain prefixed lines, no log group: the watchdog speaks inside the wait-ssh phase's group.
    try {
      if (port === undefined) {
        this.reporter.line(`SSH watchdog: Packer has waited ${this.options.afterSeconds} s for SSH, but neither its output nor its log names the forwarded port; no diagnosis`);
        return;
      }
      this.reporter.line(`SSH watchdog: Packer has waited ${this.options.afterSeconds} s for SSH; diagnosing 127.0.0.1:${port} as ${this.options.username}`);
      const privateKey = this.options.privateKeyFile ? await readFile(this.options.privateKeyFile, 'utf8').catch(() => undefined) : undefined;
      this.verdict = await diagnoseSsh({
        host: '127.0.0.1',
        port,
        username: this.options.username,
        password: this.options.password,
        privateKey,
        privateKeyPath: this.options.privateKeyFile,
        timeoutSeconds: 10,
        waitSeconds: 0,
        command: 'true',
        checkSudo: false,
      });
      for (const l of formatDiagnosis(this.verdict).trimEnd().split('\n')) this.reporter.line(`SSH watchdog: ${l}`);
    } catch (e) {
      this.reporter.line(`SSH watchdog: the diagnosis itself failed: ${(e as Error).message}`);
    }
  }
}

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
  notes: string[];
  pgid?: number;
  watchdog?: SshDiagnosis;
}

/**
 * Runs the whole build. Resolves with the image, the OVA and the timings; rejects with a
 * {@link PackerBuildError} (preflight failures as a PreflightError, bad inputs as an InputError).
 */
export async function runPackerBuild(options: PackerBuildOptions, deps: PackerBuildDeps = {}): Promise<PackerBuildResult> {
  const started = Date.now();
  const reporter = deps.reporter ?? terminalReporter((l) => process.stderr.write(`${l}\n`));
  const signal = deps.signal ?? new AbortController().signal;
  const packer = options.packer ?? 'packer';
  const cwd = resolve(options.workingDirectory ?? process.cwd());
  const template = resolve(cwd, options.template);
  if (!(await stat(template).catch(() => undefined))) throw new InputError('template', `${options.template} does not exist`, 'give a Packer template file or a directory of *.pkr.hcl files');
  for (const f of options.varFiles) if (!(await stat(resolve(cwd, f)).catch(() => undefined))) throw new InputError('var-files', `${f} does not exist`, 'list existing .pkrvars.hcl files');
  if (options.watchdog.privateKeyFile && !(await stat(options.watchdog.privateKeyFile).catch(() => undefined))) {
    throw new InputError('ssh-private-key-file', `${options.watchdog.privateKeyFile} does not exist`, 'give the private key Packer uses, or leave it empty');
  }
  const outputDir = resolve(cwd, options.outputDir);
  await mkdir(outputDir, { recursive: true });
  const state: BuildState = { options, cwd, buildLog: join(outputDir, 'packer-build.log'), env: {}, notes: [] };
  const pluginPath = deps.pluginPath ?? join(process.env.HOME ?? tmpdir(), '.cache', 'labforge', 'packer-plugins');
  const graceMs = (options.graceSeconds ?? 8) * 1000;

  const commonArgs = async (): Promise<string[]> => {
    const declared = await declaredVariables(template);
    const vars: Record<string, string> = {};
    if (declared.has('build_type')) vars.build_type = options.buildType;
    if (declared.has('version')) vars.version = options.version;
    if (declared.has('accelerator')) vars.accelerator = options.accelerator;
    Object.assign(vars, options.vars);
    const args = Object.entries(vars).map(([k, v]) => `-var=${k}=${v}`);
    args.push(...options.varFiles.map((f) => `-var-file=${resolve(cwd, f)}`));
    if (options.only.length > 0) args.push(`-only=${options.only.join(',')}`);
    return args;
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
          // Without cache-dir, Packer's download cache is temporary too (instead of a packer_cache/ in the checkout).
          PACKER_CACHE_DIR: options.cacheDir ? resolve(cwd, options.cacheDir) : join(s.workDir, 'packer_cache'),
          ...(options.pluginCache ? { PACKER_PLUGIN_PATH: pluginPath } : {}),
          ...(options.githubToken ? { PACKER_GITHUB_API_TOKEN: options.githubToken } : {}),
        };
      },
      cleanup: async (s) => {
        if (s.workDir) await rm(s.workDir, { recursive: true, force: true });
      },
    },
    {
      name: 'preflight',
      skip: () => deps.skipPreflight === true,
      run: async (s) => {
        reporter.startGroup('preflight');
        try {
          s.preflight = await assertPreflight({
            accelerator: options.accelerator,
            outputDir,
            requiredDiskBytes: 2 * options.expectedImageGiB * 2 ** 30,
            requiredMemoryMiB: options.vmMemoryMiB + 512,
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
      name: 'validate',
      run: async (s) => {
        const run = await runPackerCommand({ packer, args: ['validate', ...(await commonArgs()), template], env: s.env, cwd, reporter, signal, graceMs, groupPhases: false });
        if (run.cancelled) throw new PackerBuildError('cancelled during packer validate', s.buildLog);
        if (run.code !== 0) throw new PackerBuildError(`packer validate failed: ${run.errors.join('; ') || `exit code ${run.code}`}`, s.buildLog);
        reporter.line(`packer validate: ${basename(template)} is valid`);
      },
    },
    {
      name: 'build',
      run: async (s) => {
        const watchdog = new SshWatchdog(options.watchdog, s.buildLog, reporter);
        const args = ['build', '-machine-readable', `-on-error=${options.onError}`, ...(await commonArgs()), template];
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
      skip: (s) => !options.pluginCache || !deps.pluginCacheStore || !s.pluginKey || s.pluginHit === s.pluginKey,
      run: async (s) => {
        await deps.pluginCacheStore!.save(pluginPath, s.pluginKey!).then(
          () => reporter.line(`plugin cache: saved ${s.pluginKey}`),
          (e: Error) => s.notes.push(`plugin cache: save failed (${e.message})`),
        );
      },
    },
    {
      name: 'package',
      skip: () => options.package === 'none',
      run: async (s, stepSignal) => {
        if (!s.image) throw new PackerBuildError(`the build produced no qcow2 disk image to pack (artifacts: ${s.run?.artifacts.flatMap((a) => a.files).join(', ') || 'none'}); set package: none for builds without a disk`, s.buildLog);
        reporter.startGroup('package: OVA');
        try {
          s.ova = await packOva({
            image: s.image,
            out: join(outputDir, `${artifactBaseName(options.buildType, options.version)}.ova`),
            buildType: options.buildType,
            version: options.version,
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
  const stepSeconds = (name: string) => timeline.find((t) => t.step === name)?.seconds ?? 0;
  return {
    image: state.image,
    ova: state.ova,
    buildLog: state.buildLog,
    durationSeconds: Math.round((Date.now() - started) / 100) / 10,
    artifacts: state.run?.artifacts ?? [],
    phases: [
      { phase: 'preflight', seconds: stepSeconds('preflight') },
      { phase: 'init', seconds: stepSeconds('init') },
      { phase: 'validate', seconds: stepSeconds('validate') },
      ...(state.run?.phases ?? []),
      { phase: 'package', seconds: stepSeconds('package') },
    ],
    steps: timeline,
    versions: { ...(state.preflight?.versions ?? {}), ...(state.packerVersion ? { packer: state.packerVersion } : {}) },
    watchdog: state.watchdog,
    notes: state.notes,
  };
}

/** The action outputs (kebab-case strings). */
export function buildOutputs(r: PackerBuildResult): Record<string, string> {
  return {
    image: r.image ?? '',
    ova: r.ova?.ova ?? '',
    sha256: r.ova?.sha256 ?? '',
    size: r.ova ? String(r.ova.size) : '',
    'build-log': r.buildLog,
    'duration-seconds': String(Math.round(r.durationSeconds)),
  };
}

/** Rows for the job summary: the outputs, the artifacts, then a timing per phase and the tool versions. */
export function buildSummaryRows(r: PackerBuildResult): [string, string][] {
  const rows: [string, string][] = Object.entries(buildOutputs(r))
    .filter(([, v]) => v !== '')
    .map(([k, v]) => [`\`${k}\``, v]);
  for (const a of r.artifacts) rows.push([`artifact ${a.build}`, a.files.length > 0 ? a.files.join(', ') : a.description]);
  for (const p of r.phases) rows.push([`phase ${p.phase}`, `${p.seconds.toFixed(1)} s`]);
  for (const [tool, v] of Object.entries(r.versions)) rows.push([tool, v]);
  return rows;
}
