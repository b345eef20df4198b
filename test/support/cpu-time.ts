/**
 * Test helper: runs a command and measures the CPU time (user + system) that it and every process it waited
 * for used, as the kernel accounts it. Unlike wall-clock time it does not grow when other work shares the
 * CPUs or the disk, so a time bound on it holds on a loaded CI machine as on an idle one.
 *
 * How: bash runs the command, waits for it, and prints its `times` (the second line is the CPU time of the
 * children it reaped, which includes their own reaped children) on fd 3. The command itself gets no fd 3.
 * bash leads a process group of its own, so a timeout kills the command with it.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';

const WRAPPER = '"$@" 3>&-; rc=$?; times >&3; exit "$rc"';

export interface TimedChild {
  child: ChildProcess;
  /** The CPU time in ms once the command has ended, or null when it was killed before bash could report. */
  cpuMs: Promise<number | null>;
  /** Kills the command and bash (the whole process group). */
  kill(): void;
}

/** Parses bash's `times` output: `0m0.004s 0m0.000s` (the shell), then the children's user and system time. */
export function parseTimes(text: string): number | null {
  const lines = text.trim().split('\n');
  if (lines.length !== 2) return null;
  const spans = [...lines[1]!.matchAll(/(\d+)m(\d+(?:\.\d+)?)s/g)];
  if (spans.length !== 2) return null;
  return Math.round(spans.reduce((ms, m) => ms + (Number(m[1]) * 60 + Number(m[2])) * 1000, 0));
}

/** Spawns `cmd args` as {@link spawn} would (stdin, stdout and stderr as `stdio` says), measuring its CPU time. */
export function spawnTimed(cmd: string, args: string[], opts: SpawnOptions & { stdio: readonly ['ignore' | 'pipe', 'pipe', 'pipe'] }): TimedChild {
  const child = spawn('bash', ['-c', WRAPPER, 'labforge-timed', cmd, ...args], { ...opts, stdio: [...opts.stdio, 'pipe'], detached: true });
  const report = child.stdio[3]!;
  let times = '';
  report.on('data', (d: Buffer) => (times += d.toString()));
  const cpuMs = new Promise<number | null>((res) => child.on('close', () => res(parseTimes(times))));
  const kill = (): void => {
    try {
      if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  };
  return { child, cpuMs, kill };
}
