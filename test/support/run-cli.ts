/** Runs the built `labforge` command line (bin/labforge → cli/dist/index.js) as a user would. */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { repoRoot } from './run-action.js';

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

export async function runCli(args: string[], opts: { env?: Record<string, string>; cwd?: string; timeoutMs?: number; input?: string } = {}): Promise<CliRun> {
  const child = spawn(process.execPath, [join(repoRoot, 'bin', 'labforge'), ...args], {
    cwd: opts.cwd ?? repoRoot,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root', ...opts.env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdin.end(opts.input ?? '');
  const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
  const code: number = await new Promise((res) => child.on('close', (c) => res(c ?? -1)));
  clearTimeout(timer);
  return { code, stdout, stderr };
}
