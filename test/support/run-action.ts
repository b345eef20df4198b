/**
 * Runs a bundled action (`actions/<name>/dist/index.js`) with plain `node`, exactly as the runner does:
 * `INPUT_*` variables, GITHUB_OUTPUT / GITHUB_STATE / GITHUB_STEP_SUMMARY files, optional event payload.
 * Then it reads the outputs back from the file the action wrote.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { spawnTimed } from './cpu-time.js';

export const repoRoot = resolve(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '..', '..');

export interface ActionRun {
  code: number;
  stdout: string;
  stderr: string;
  outputs: Record<string, string>;
  state: Record<string, string>;
  summary: string;
  /** `::error` annotations printed on stdout. */
  errors: string[];
  /** With `measureCpu`: the CPU time (ms) the action and the processes it waited for used; else null. */
  cpuMs: number | null;
}

export interface RunActionOptions {
  inputs?: Record<string, string>;
  env?: Record<string, string>;
  /** Event payload written to a file and passed as GITHUB_EVENT_PATH. */
  event?: { name: string; payload: unknown } | { name: string; raw: string };
  /** Run the `post:` phase with this saved state. */
  post?: Record<string, string>;
  cwd?: string;
  timeoutMs?: number;
  /** Measure the action's CPU time (test/support/cpu-time.ts): a time bound that holds under load. */
  measureCpu?: boolean;
}

/** Parses the GITHUB_OUTPUT / GITHUB_STATE file format (`k=v` lines and `k<<DELIM` heredocs). */
export function parseCommandFile(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? '';
    const heredoc = /^([^=<]+)<<(.+)$/.exec(line);
    if (heredoc) {
      const [, key, delim] = heredoc;
      const body: string[] = [];
      for (i++; i < lines.length && lines[i] !== delim; i++) body.push(lines[i] ?? '');
      out[key!] = body.join('\n');
    } else if (line.includes('=')) {
      out[line.slice(0, line.indexOf('='))] = line.slice(line.indexOf('=') + 1);
    }
  }
  return out;
}

export async function runBundledAction(name: string, opts: RunActionOptions = {}): Promise<ActionRun> {
  const dir = mkdtempSync(join(tmpdir(), `labforge-action-${name}-`));
  const files = { output: join(dir, 'output'), state: join(dir, 'state'), summary: join(dir, 'summary'), event: join(dir, 'event.json') };
  for (const f of [files.output, files.state, files.summary]) writeFileSync(f, '');
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? '/root',
    GITHUB_OUTPUT: files.output,
    GITHUB_STATE: files.state,
    GITHUB_STEP_SUMMARY: files.summary,
    GITHUB_ACTIONS: 'true',
    RUNNER_TEMP: dir,
  };
  for (const [k, v] of Object.entries(opts.inputs ?? {})) env[`INPUT_${k.replace(/ /g, '_').toUpperCase()}`] = v;
  if (opts.event) {
    writeFileSync(files.event, 'raw' in opts.event ? opts.event.raw : JSON.stringify(opts.event.payload));
    env.GITHUB_EVENT_NAME = opts.event.name;
    env.GITHUB_EVENT_PATH = files.event;
  }
  for (const [k, v] of Object.entries(opts.post ?? {})) env[`STATE_${k}`] = v;
  if (opts.post) env.STATE_isPost = 'true';
  Object.assign(env, opts.env ?? {});

  const entry = join(repoRoot, 'actions', name, 'dist', 'index.js');
  const where = { cwd: opts.cwd ?? repoRoot, env };
  const timed = opts.measureCpu ? spawnTimed(process.execPath, [entry], { ...where, stdio: ['ignore', 'pipe', 'pipe'] }) : null;
  const child = timed?.child ?? spawn(process.execPath, [entry], { ...where, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => (timed ? timed.kill() : child.kill('SIGKILL')), opts.timeoutMs ?? 120_000);
  const code: number = await new Promise((res) => child.on('close', (c) => res(c ?? -1)));
  clearTimeout(timer);
  const cpuMs = timed ? await timed.cpuMs : null;
  const read = (f: string) => (existsSync(f) ? readFileSync(f, 'utf8') : '');
  const run: ActionRun = {
    code,
    stdout,
    stderr,
    outputs: parseCommandFile(read(files.output)),
    state: parseCommandFile(read(files.state)),
    summary: read(files.summary),
    errors: stdout.split('\n').filter((l) => l.startsWith('::error')),
    cpuMs,
  };
  rmSync(dir, { recursive: true, force: true });
  return run;
}

/**
 * The stdout lines the runner would execute as workflow commands: `::` after leading white space (the
 * runner trims it) or the legacy `##[` anywhere, split as the runner splits (CR or LF).
 */
export function workflowCommandLines(stdout: string): string[] {
  return stdout.split(/\r\n|\r|\n/).filter((l) => /^\s*::/.test(l) || l.includes('##['));
}

/** The command lines of a run that are not the action's own bookkeeping (state, masks, debug, groups). */
export function unexpectedCommandLines(run: ActionRun, title: string): string[] {
  const own = [/^::save-state name=isPost::true$/, /^::add-mask::/, /^::debug::/, /^::(group|endgroup)::/, new RegExp(`^::error title=${title}::[^\\r\\n]*$`)];
  return workflowCommandLines(run.stdout).filter((l) => !own.some((re) => re.test(l)));
}
