/**
 * One `qemu-img convert -p …` child, shared by ova-pack (image → streamOptimized VMDK) and
 * ova-disk-convert (an OVA's VMDK → qcow2): its own process group, so a cancellation SIGKILLs it and
 * anything it started; `-p` progress parsed into percentages; stderr kept for the caller's error.
 */
import { spawn } from 'node:child_process';

export interface QemuImgRun {
  /** Exit code, or null when a signal ended it. */
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The signal given was aborted while it ran (the child was killed). */
  aborted: boolean;
  stderr: string;
}

/** Runs qemu-img with `args`; rejects only when it cannot be started (the message names the fix). */
export function runQemuImg(o: { qemuImg: string; args: string[]; signal?: AbortSignal; onPercent?: (percent: number) => void }): Promise<QemuImgRun> {
  return new Promise((done, reject) => {
    // spawn, not @actions/exec: a long convert in its own process group, SIGKILLed as a group on abort.
    const child = spawn(o.qemuImg, o.args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let stderr = '';
    const kill = () => {
      if (child.pid !== undefined && child.exitCode === null) {
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          /* already gone */
        }
      }
    };
    o.signal?.addEventListener('abort', kill, { once: true });
    // `-p` prints "(12.34/100%)" updates.
    child.stdout.on('data', (d: Buffer) => {
      const m = /\((\d+(?:\.\d+)?)\/100%\)[^(]*$/.exec(d.toString());
      if (m) o.onPercent?.(Number(m[1]));
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', (e) => {
      o.signal?.removeEventListener('abort', kill);
      reject(new Error(`cannot run ${o.qemuImg} (${e.message}); install qemu-utils`));
    });
    child.on('close', (code, signal) => {
      o.signal?.removeEventListener('abort', kill);
      done({ code, signal, aborted: o.signal?.aborted ?? false, stderr });
    });
  });
}
