/**
 * Running Packer as a child a CI job can always stop: its own process group (SIGTERM, then SIGKILL after a
 * grace period, so QEMU goes too), `-machine-readable` output parsed live into timestamped lines grouped by
 * Packer's phases, and the small helpers around it (version, leftovers of a cancelled job, the image among
 * the artifacts). packer-build.ts puts these together as steps.
 */
import { spawn } from 'node:child_process';
import { rm, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { ArtifactCollector, LineSplitter, parseMachineReadableLine, phaseOf, type PackerArtifact, type PackerEvent, type PackerPhase } from './packer-machine-readable.js';
import { logLines } from './escape.js';
import { compareVersions } from './preflight.js';
import type { SshDiagnosis } from './ssh-diagnose.js';
import type { StepTiming } from './step-sequence.js';
import { toolOutput } from './tool-output.js';

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

export interface PhaseTiming {
  phase: PackerPhase | 'validate' | 'init' | 'package' | 'preflight';
  seconds: number;
  /** When the phase started (ISO 8601), for the summary's timeline. */
  startedAt?: string;
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

export interface PackerRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  errors: string[];
  artifacts: PackerArtifact[];
  phases: PhaseTiming[];
  timedOut: boolean;
  cancelled: boolean;
}

export interface RunPackerCommandOptions {
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
export async function runPackerCommand(o: RunPackerCommandOptions): Promise<PackerRun> {
  // spawn, not @actions/exec: Packer runs for minutes in its own process group, stopped as a group on cancel.
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
      phases.push({ phase: phase.name, seconds: Math.round((now - phase.since) / 100) / 10, startedAt: new Date(phase.since).toISOString() });
      if (o.groupPhases) o.reporter.endGroup();
    }
    phase = { name: next, since: now };
    if (o.groupPhases) o.reporter.startGroup(`packer: ${next}`);
  };

  const handle = (line: string) => {
    const event = parseMachineReadableLine(line);
    if (!event) {
      // Packer's and its plugins' own text, escaped line by line (no workflow command, no terminal escape).
      if (line.trim() !== '') for (const l of logLines(line)) o.reporter.line(l);
      return;
    }
    if (event.kind === 'ui') {
      const next = phaseOf(event.text);
      if (next) enterPhase(next);
      else if (!phase && o.groupPhases) enterPhase('prepare');
      for (const l of logLines(event.text.replace(/^\n+/, '').replace(/\n+$/, ''))) o.reporter.line(`[${clock(event.time)}] ${event.level === 'error' ? 'ERROR ' : ''}${l}`);
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
    phases.push({ phase: phase.name, seconds: Math.round((Date.now() - phase.since) / 100) / 10, startedAt: new Date(phase.since).toISOString() });
    if (o.groupPhases) o.reporter.endGroup();
  }
  if (stderrText.trim()) errors.push(...stderrText.trim().split('\n').slice(-5));
  return { code, signal, errors, artifacts: artifacts.artifacts, phases, timedOut, cancelled };
}

/** Packer's version, from `packer version` (e.g. `1.6.6`). */
export async function packerVersion(packer = 'packer'): Promise<string> {
  const { stdout: out } = await toolOutput(packer, ['version']).catch((e: Error) => Promise.reject(new PackerBuildError(`cannot run ${packer} (${e.message}); install Packer`)));
  const v = /Packer v(\d+\.\d+\.\d+)/.exec(out)?.[1];
  if (v) return v;
  throw new PackerBuildError(`cannot read the Packer version from '${out.trim()}'`);
}

/** `packer init` exists from Packer 1.7.0. */
export const packerHasInit = (version: string) => compareVersions(version, '1.7.0') >= 0;

/** Finds the disk image among the artifacts: a `.qcow2` file, else a file qemu-img reads as qcow2. */
export async function findImage(artifacts: PackerArtifact[], cwd: string): Promise<string | undefined> {
  const files = artifacts.flatMap((a) => a.files.map((f) => resolve(cwd, f)));
  const byName = files.find((f) => f.endsWith('.qcow2'));
  if (byName) return byName;
  for (const f of files) {
    const out = await toolOutput('qemu-img', ['info', '--output=json', f]).then(
      (r) => r.stdout,
      () => '',
    );
    let format = '';
    try {
      format = (JSON.parse(out) as { format: string }).format;
    } catch {
      /* not an image qemu-img reads */
    }
    if (format === 'qcow2') return f;
  }
  return undefined;
}
