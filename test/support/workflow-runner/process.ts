/**
 * Step processes for the workflow runner STAND-IN (a test double for the GitHub Actions runner; see
 * index.ts). Every `run:` script and every action's `node` starts in a NEW PROCESS GROUP, so that a step's
 * `timeout-minutes`, the job's timeout and a cancellation stop it with all its children: SIGTERM to the
 * group, SIGKILL after a grace period. Processes a step leaves behind keep running until the end of the job
 * (as on a runner, where later steps may use them) and are then killed ("cleaning up orphan processes").
 */
import { spawn } from 'node:child_process';

export interface GroupProcessOptions {
  command: string;
  args: string[];
  cwd: string;
  env: Record<string, string>;
  /** Kill the group after this long (the step's or the job's remaining time). */
  timeoutMs?: number;
  /** Kill the group when this aborts (cancellation, the job's timeout). */
  signal?: AbortSignal;
  /** Between SIGTERM and SIGKILL. */
  graceMs: number;
  onOutput: (stream: 'stdout' | 'stderr', chunk: Buffer) => void;
}

export interface GroupProcessResult {
  exitCode: number | null;
  /** The signal that ended the process, if one did. */
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  cancelled: boolean;
  /** Set when the process could not start (missing working directory or command). */
  startError?: string;
}

/** The process groups a job started, killed together at the end of the job. */
export class ProcessGroups {
  private readonly groups = new Set<number>();

  add(pgid: number): void {
    this.groups.add(pgid);
  }

  /** SIGKILLs every group that still has members. */
  killAll(): void {
    for (const pgid of this.groups) signalGroup(pgid, 'SIGKILL');
    this.groups.clear();
  }
}

function signalGroup(pgid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(-pgid, sig);
  } catch {
    // the group is gone
  }
}

/** Runs a command as the leader of a new process group and waits for it to exit. */
export function runInProcessGroup(opts: GroupProcessOptions, groups: ProcessGroups): Promise<GroupProcessResult> {
  return new Promise((resolvePromise) => {
    const child = spawn(opts.command, opts.args, { cwd: opts.cwd, env: opts.env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let timedOut = false;
    let cancelled = false;
    let killTimer: NodeJS.Timeout | undefined;
    let settled = false;
    const stop = () => {
      if (child.pid === undefined || killTimer) return;
      signalGroup(child.pid, 'SIGTERM');
      killTimer = setTimeout(() => child.pid !== undefined && signalGroup(child.pid, 'SIGKILL'), opts.graceMs);
    };
    const timer = opts.timeoutMs !== undefined ? setTimeout(() => ((timedOut = true), stop()), Math.max(0, opts.timeoutMs)) : undefined;
    const onAbort = () => ((cancelled = true), stop());
    if (opts.signal?.aborted) onAbort();
    else opts.signal?.addEventListener('abort', onAbort, { once: true });
    if (child.pid !== undefined) groups.add(child.pid);
    child.stdout.on('data', (d: Buffer) => opts.onOutput('stdout', d));
    child.stderr.on('data', (d: Buffer) => opts.onOutput('stderr', d));
    const finish = (r: GroupProcessResult) => {
      if (settled) return;
      settled = true;
      if (timer) clearTimeout(timer);
      if (killTimer) clearTimeout(killTimer);
      opts.signal?.removeEventListener('abort', onAbort);
      resolvePromise(r);
    };
    child.on('error', (e) => finish({ exitCode: null, signal: null, timedOut, cancelled, startError: e.message }));
    child.on('exit', (code, sig) => {
      // Wait for the pipes to drain, but not for children that keep them open (they are killed at job end).
      let open = 2;
      const done = () => finish({ exitCode: code, signal: sig, timedOut, cancelled });
      const drained = setTimeout(done, 500);
      const close = () => {
        if (--open === 0) {
          clearTimeout(drained);
          done();
        }
      };
      if (child.stdout.readableEnded) close();
      else child.stdout.once('end', close);
      if (child.stderr.readableEnded) close();
      else child.stderr.once('end', close);
    });
  });
}
