/** Runs the built `labforge` command line (bin/labforge → cli/dist/index.js) as a user would. */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { spawnTimed } from './cpu-time.js';
import { repoRoot } from './run-action.js';

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
  /** With `measureCpu`: the CPU time (ms) the command and the processes it waited for used; else null. */
  cpuMs: number | null;
}

export async function runCli(args: string[], opts: { env?: Record<string, string>; cwd?: string; timeoutMs?: number; input?: string; measureCpu?: boolean } = {}): Promise<CliRun> {
  const argv = [join(repoRoot, 'bin', 'labforge'), ...args];
  const where = { cwd: opts.cwd ?? repoRoot, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root', ...opts.env } };
  // Measured (test/support/cpu-time.ts): bash runs the command and reports its CPU time.
  const timed = opts.measureCpu ? spawnTimed(process.execPath, argv, { ...where, stdio: ['pipe', 'pipe', 'pipe'] }) : null;
  const child = timed?.child ?? spawn(process.execPath, argv, { ...where, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdin!.end(opts.input ?? '');
  const timer = setTimeout(() => (timed ? timed.kill() : child.kill('SIGKILL')), opts.timeoutMs ?? 120_000);
  const code: number = await new Promise((res) => child.on('close', (c) => res(c ?? -1)));
  clearTimeout(timer);
  return { code, stdout, stderr, cpuMs: timed ? await timed.cpuMs : null };
}
