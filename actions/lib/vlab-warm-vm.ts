/**
 * The machine side of a warm (boot mode): the copy-on-write overlay, the cloud-init seed, QEMU, the clean
 * shutdown and the flatten of the overlay into the output image; and the `post:` cleanup of a warm whose
 * process is gone. Each step's cleanup undoes what it made (step-sequence.ts).
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import type { Step } from './step-sequence.js';
import { startVm } from './qemu-vm.js';
import { createSeed, removeSeed, seedQemuArgs, SEED_VOLUME_ID } from './cloud-init-seed.js';
import { toolOutput } from './tool-output.js';
import { runQemuImg } from './qemu-img-run.js';
import type { WarmResources, WarmState } from './vlab-warm-state.js';

/** Runs a short tool (qemu-img info/create) to completion; rejects with its stderr on a non-zero exit. */
async function runShortTool(cmd: string, args: string[], signal?: AbortSignal): Promise<string> {
  if (signal?.aborted) throw new Error(`${cmd} was cancelled`);
  const r = await toolOutput(cmd, args).catch((e: Error) => Promise.reject(new Error(`cannot run ${cmd}: ${e.message}`)));
  if (r.exitCode !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (exit ${r.exitCode}): ${r.stderr.trim()}`);
  return r.stdout;
}


export const overlayStep: Step<WarmState> = {
  name: 'overlay',
  skip: (s) => s.opts.attach !== undefined,
  run: async (s, signal) => {
    const image = resolve(s.opts.image!);
    const infoText = await runShortTool('qemu-img', ['info', '--output=json', image], signal);
    const format = (JSON.parse(infoText) as { format?: string }).format ?? 'qcow2';
    const output = resolve(s.opts.output!);
    s.overlay = `${output}.overlay.qcow2`;
    s.serialLog = `${output}.serial.log`;
    await rm(s.overlay, { force: true });
    s.onResources({ overlay: s.overlay, serialLog: s.serialLog });
    await runShortTool('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', image, '-F', format, s.overlay], signal);
    s.log(`overlay ${s.overlay} on ${basename(image)} (${format}; the standard image is not modified)`);
  },
  cleanup: async (s) => {
    if (s.overlay) await rm(s.overlay, { force: true });
  },
};

export const seedStep: Step<WarmState> = {
  name: 'seed',
  skip: (s) => !s.opts.cloudInitSeed || s.opts.attach !== undefined,
  run: async (s, signal) => {
    const o = s.opts;
    const parentDir = process.env['RUNNER_TEMP'] && existsSync(process.env['RUNNER_TEMP']) ? process.env['RUNNER_TEMP'] : undefined;
    s.seed = await createSeed({ user: o.sshUser, ...(o.sshKey ? { privateKey: o.sshKey } : {}), ...(o.sshPassphrase ? { passphrase: o.sshPassphrase } : {}), ...(parentDir ? { parentDir } : {}), keyComment: `labforge-warm-${o.version}`, signal });
    s.onResources({ seedDir: s.seed.dir });
    if (!o.sshKey) s.onSecret(s.seed.privateKey);
    // The state's own copy of the options: the key to log in with and the seed disk for QEMU.
    s.opts = { ...o, sshKey: s.seed.privateKey, qemuArgs: [...o.qemuArgs, ...seedQemuArgs(s.seed)] };
    s.log(`cloud-init seed ${s.seed.iso} (volume ${SEED_VOLUME_ID}, made with ${s.seed.isoTool}, attached as a read-only virtio disk): authorizes ${o.sshKey ? 'the given key' : 'a new ed25519 key'} for ${o.sshUser} with passwordless sudo; instance-id ${s.seed.instanceId}`);
  },
  cleanup: async (s) => {
    if (s.seed) {
      await removeSeed(s.seed);
      s.log(`removed the cloud-init seed and its key (${s.seed.dir})`);
    }
  },
};

export const bootStep: Step<WarmState> = {
  name: 'boot',
  skip: (s) => s.opts.attach !== undefined,
  run: async (s) => {
    const o = s.opts;
    s.vm = await startVm({
      image: s.overlay!,
      accelerator: o.accelerator,
      memoryMiB: o.memoryMiB,
      cpus: o.cpus,
      nested: o.nested,
      serialLog: s.serialLog!,
      extraArgs: o.qemuArgs,
    });
    s.onResources({ qemuPid: s.vm.pid, overlay: s.overlay, serialLog: s.serialLog });
    void s.vm.exited.then(() => (s.vmExited = true));
    s.log(`QEMU pid ${s.vm.pid} (${o.accelerator}, ${o.cpus} CPU, ${o.memoryMiB} MiB${o.nested ? ', -cpu host' : ''}); SSH on 127.0.0.1:${s.vm.sshPort}; serial console → ${s.serialLog}`);
  },
  cleanup: async (s) => {
    if (s.vm && !s.vmExited) {
      s.log(`stopping QEMU pid ${s.vm.pid}`);
      await s.vm.kill();
    }
  },
};

export const shutdownStep: Step<WarmState> = {
  name: 'shutdown',
  skip: (s) => s.opts.attach !== undefined,
  run: async (s) => {
    const vm = s.vm!;
    const timeoutMs = s.opts.shutdownTimeoutSeconds * 1000;
    s.log('powering off the guest');
    // poweroff over SSH (the connection drops when it works); ACPI through QEMU's handle as the fallback.
    const closed = s.session!.closed();
    s.session!.exec('sudo -n systemctl poweroff', { timeoutMs: 30_000 }).catch(() => undefined);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([closed, vm.exited, new Promise((r) => (timer = setTimeout(r, 30_000)))]);
    clearTimeout(timer);
    s.session!.close();
    const stopped = await vm.shutdown({ timeoutMs });
    s.vmExited = true;
    if (!stopped.clean) s.log(`the guest did not power off within ${s.opts.shutdownTimeoutSeconds} s; QEMU was killed (the disk was synced by seal)`);
  },
};

export const flattenStep: Step<WarmState> = {
  name: 'flatten',
  skip: (s) => s.opts.attach !== undefined,
  run: async (s, signal) => {
    const output = resolve(s.opts.output!);
    s.flattenTmp = `${output}.partial`;
    await mkdir(dirname(output), { recursive: true });
    // qemu-img -p prints "(12.34/100%)" with carriage returns: one progress line every 5 s, and the last.
    const t0 = Date.now();
    let next = t0 + 5_000;
    let percent = 0;
    const progress = () => {
      const elapsed = (Date.now() - t0) / 1000;
      const eta = percent > 0 ? Math.round((elapsed * (100 - percent)) / percent) : undefined;
      s.log(`flatten: ${percent.toFixed(1)}% (${elapsed.toFixed(0)} s${eta !== undefined && percent < 100 ? `, ETA ${eta} s` : ''})`);
    };
    const args = ['convert', '-p', '-O', 'qcow2', s.overlay!, s.flattenTmp];
    // Its own process group, SIGKILLed as a group when the warm is cancelled (qemu-img-run.ts).
    const run = await runQemuImg({
      qemuImg: 'qemu-img',
      args,
      signal,
      onPercent: (p) => {
        percent = p;
        if (Date.now() >= next) {
          next = Date.now() + 5_000;
          progress();
        }
      },
    });
    if (run.aborted) throw new Error('qemu-img was cancelled');
    if (run.code !== 0) throw new Error(`qemu-img ${args.join(' ')} failed (${run.code === null ? `signal ${run.signal ?? '?'}` : `exit ${run.code}`}): ${run.stderr.trim()}`);
    percent = 100;
    progress();
    await rename(s.flattenTmp, output);
    s.flattenTmp = undefined;
    const size = (await stat(output)).size;
    s.log(`pre-warmed image ${output} (${(size / 1024 / 1024).toFixed(0)} MiB)`);
  },
  cleanup: async (s) => {
    if (s.flattenTmp) await rm(s.flattenTmp, { force: true });
  },
};

/**
 * Cleans up after a warm whose process is gone (the action's `post:` step, after cancellation): kills the
 * QEMU process group by PID and removes the overlay and the cloud-init seed. Returns what it did.
 */
export async function cleanupWarm(resources: WarmResources): Promise<string[]> {
  const done: string[] = [];
  if (resources.qemuPid && resources.qemuPid > 1) {
    const pid = resources.qemuPid;
    const alive = (p: number) => {
      try {
        process.kill(p, 0);
        return true;
      } catch {
        return false;
      }
    };
    if (alive(pid) && (await isQemu(pid))) {
      for (const sig of ['SIGTERM', 'SIGKILL'] as const) {
        try {
          process.kill(-pid, sig);
        } catch {
          try {
            process.kill(pid, sig);
          } catch {
            /* gone */
          }
        }
        for (let i = 0; i < 50 && alive(pid); i++) await new Promise((r) => setTimeout(r, 100));
        if (!alive(pid)) break;
      }
      done.push(`killed QEMU pid ${pid}`);
    }
  }
  if (resources.overlay && existsSync(resources.overlay)) {
    await rm(resources.overlay, { force: true });
    done.push(`removed overlay ${resources.overlay}`);
  }
  // Only a directory createSeed made (the name comes from saved state: never remove anything else).
  if (resources.seedDir && basename(resources.seedDir).startsWith('labforge-seed-') && existsSync(resources.seedDir)) {
    await removeSeed({ dir: resources.seedDir });
    done.push(`removed cloud-init seed ${resources.seedDir}`);
  }
  return done;
}

/** True when PID is a QEMU process (never kill a recycled PID that belongs to something else). */
async function isQemu(pid: number): Promise<boolean> {
  try {
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8');
    return /qemu-system/.test(cmdline.split('\0')[0] ?? '');
  } catch {
    return false;
  }
}

