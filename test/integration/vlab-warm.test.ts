/**
 * vlab-warm against the tiny real guest under TCG: attach mode against a running guest (a failing readiness
 * check writes no marker); cancellation mid-init and the post step leave no QEMU and no overlay behind; SSH
 * that never comes up. A whole warm of a built standard image, and the first boot of its output, run in the
 * workflow end-to-end test (test/e2e/workflows.test.ts), through build.yml as users run it.
 */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdtempSync, rmSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runBundledAction, repoRoot } from '../support/run-action.js';
import { runCli } from '../support/run-cli.js';
import { bootTinyGuest, ensureTinyGuest, type TinyGuest, type TinyGuestVm } from '../support/tiny-guest.js';

/** The parts of warm-manifest.json / status --json the tests read. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Manifest = Record<string, any>;

let guest: TinyGuest;
let work: string;
const started: TinyGuestVm[] = [];

/** qemu args of the tiny guest with the boot service skipped: the warm, not the first boot, initializes. */
const warmQemuArgs = (g: TinyGuest) => JSON.stringify(['-kernel', g.kernel, '-initrd', g.initrd, '-append', `${g.kernelCmdline} hedgehog-lab.skip`]);

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};
const qemuPids = () =>
  spawnSync('pgrep', ['-f', `qemu-system.*${work}`], { encoding: 'utf8' })
    .stdout.split('\n')
    .filter(Boolean)
    .map(Number);

beforeAll(async () => {
  guest = await ensureTinyGuest();
  work = mkdtempSync(join(tmpdir(), 'labforge-warm-test-'));
}, 900_000);

afterAll(async () => {
  for (const vm of started) await vm.stop();
  rmSync(work, { recursive: true, force: true });
});

describe('attach mode (a machine something else runs)', () => {
  let vm: TinyGuestVm;
  beforeAll(async () => {
    vm = await bootTinyGuest({ kernelArgs: ['hedgehog-lab.skip'] });
    started.push(vm);
  }, 300_000);
  afterAll(async () => vm?.stop());

  it('fails with the evidence and writes no marker when readiness fails', async () => {
    const run = await runCli(
      ['warm', '--attach', `127.0.0.1:${vm.sshPort}`, '--ssh-key-path', guest.privateKey, '--init-command', 'echo init done', '--ready-command', "echo 'lab not ready: 0/4 switches up'; exit 4", '--seal', 'false'],
      { timeoutMs: 120_000 },
    );
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/warm failed at ready: readiness check failed: .* exited with 4/);
    expect(run.stderr).toContain('lab not ready: 0/4 switches up');
    expect((await vm.exec('cat /etc/hedgehog-lab/build-type')).stdout).toBe('standard\n');
    expect((await vm.exec('test -e /var/lib/hedgehog-lab/warm-manifest.json; echo $?')).stdout.trim()).toBe('1');
  }, 180_000);

  it('logs in with an encrypted key whose passphrase comes from LABFORGE_SSH_PASSPHRASE, never echoing it', async () => {
    const encrypted = join(work, 'encrypted-key');
    copyFileSync(guest.privateKey, encrypted);
    chmodSync(encrypted, 0o600);
    const passphrase = 'correct horse 42';
    execFileSync('ssh-keygen', ['-q', '-p', '-N', passphrase, '-f', encrypted]);
    const run = await runCli(['warm', '--attach', `127.0.0.1:${vm.sshPort}`, '--ssh-key-path', encrypted, '--init-command', 'echo init done', '--ready-command', 'exit 4', '--seal', 'false'], {
      env: { LABFORGE_SSH_PASSPHRASE: passphrase },
      timeoutMs: 120_000,
    });
    expect(run.stderr).toMatch(/SSH up as \S+@127\.0\.0\.1:\d+/);
    expect(run.stderr).toMatch(/warm failed at ready: /);
    expect(run.code).toBe(1);
    expect(run.stderr + run.stdout).not.toContain(passphrase);
  }, 180_000);

  it('initializes the running lab, proves it ready and marks it', async () => {
    const run = await runCli(['warm', '--attach', `127.0.0.1:${vm.sshPort}`, '--ssh-key-path', guest.privateKey, '--seal', 'false', '--version', '2.0.0'], { timeoutMs: 300_000 });
    expect(run.stderr).toContain('mode=build-init');
    expect(run.code).toBe(0);
    const result = JSON.parse(run.stdout) as { image: string; timeline: Record<string, number> };
    expect(result.image).toBe('');
    expect(Object.keys(result.timeline)).toEqual(['ssh-up', 'init', 'ready', 'mark']);
    expect((await vm.exec('cat /etc/hedgehog-lab/build-type')).stdout).toBe('prewarmed\n');
    const manifest = JSON.parse((await vm.exec('cat /var/lib/hedgehog-lab/warm-manifest.json')).stdout) as Manifest;
    expect(manifest).toMatchObject({ labVersion: '2.0.0', mode: 'attach' });
    expect(vm.vm.isRunning()).toBe(true); // attach mode never shuts the machine down
  }, 300_000);

  it('as the bundled action, writes a job summary with the timing table and the warm as a Gantt chart', async () => {
    // The lab is initialized by now: build-init only resumes it and proves it ready again.
    const run = await runBundledAction('vlab-warm', { inputs: { host: '127.0.0.1', port: String(vm.sshPort), 'ssh-key-path': guest.privateKey, seal: 'false', version: '2.0.0' } });
    expect(run.errors).toEqual([]);
    expect(run.code).toBe(0);
    expect(run.summary).toContain(`vlab-warm: 127.0.0.1:${vm.sshPort} pre-warmed in`);
    expect(run.summary).toMatch(/<\/table>\n\n```mermaid\ngantt\n {2}title Warm timeline\n {2}dateFormat x\n/);
    const tasks = (/```mermaid\n[\s\S]*?\n```\n/.exec(run.summary)?.[0] ?? '').split('\n').filter((l) => / :p\d+, /.test(l));
    expect(tasks.map((l) => l.trim().split(' ')[0])).toEqual(['ssh-up', 'init', 'ready', 'mark']);
    for (const l of tasks) expect(l).toMatch(/^ {2}[a-z-]+ :p\d, \d{13}, \d{13}$/);
  }, 300_000);
});

describe('cancellation and cleanup', () => {
  it('a SIGTERM during init stops QEMU and removes the overlay', async () => {
    const output = join(work, 'cancelled.qcow2');
    const child = spawn(process.execPath, [join(repoRoot, 'bin', 'labforge'), 'warm', '--image', guest.image, '--output', output, '--accelerator', 'tcg', '--memory', '1024', '--ssh-key-path', guest.privateKey, '--qemu-args', warmQemuArgs(guest), '--init-command', 'echo initializing; sleep 600'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    const code = await new Promise<number | null>((resolve) => {
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
        if (stderr.includes('| initializing') && !child.killed) child.kill('SIGTERM');
      });
      child.on('close', (c) => resolve(c));
    });
    expect(stderr).toContain('warm cancelled during init');
    expect(code).toBe(1);
    const pid = Number(/QEMU pid (\d+)/.exec(stderr)?.[1]);
    expect(pid).toBeGreaterThan(0);
    expect(alive(pid)).toBe(false);
    expect(existsSync(`${output}.overlay.qcow2`)).toBe(false);
    expect(existsSync(output)).toBe(false);
    expect(qemuPids()).toEqual([]);
  }, 300_000);

  it('the post step kills a left-over QEMU by its saved PID and removes the overlay', async () => {
    const overlay = join(work, 'left-over.overlay.qcow2');
    spawnSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', guest.image, '-F', 'qcow2', overlay]);
    // a real QEMU, paused before the first instruction (costs no CPU), in its own process group like the warm's
    const qemu = spawn('qemu-system-x86_64', ['-S', '-display', 'none', '-nodefaults', '-accel', 'tcg', '-m', '64', '-drive', `file=${overlay},if=virtio`], { detached: true, stdio: 'ignore' });
    await new Promise((r) => setTimeout(r, 500));
    expect(alive(qemu.pid!)).toBe(true);
    const run = await runBundledAction('vlab-warm', { post: { 'qemu-pid': String(qemu.pid), overlay } });
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(`killed QEMU pid ${qemu.pid}`);
    await new Promise((r) => setTimeout(r, 200));
    expect(alive(qemu.pid!)).toBe(false);
    expect(existsSync(overlay)).toBe(false);
  });

  it('the post step never kills a PID that is not QEMU', async () => {
    const sleeper = spawn('sleep', ['30'], { detached: true, stdio: 'ignore' });
    try {
      const run = await runBundledAction('vlab-warm', { post: { 'qemu-pid': String(sleeper.pid) } });
      expect(run.stdout).toContain('nothing left to clean up');
      expect(alive(sleeper.pid!)).toBe(true);
    } finally {
      sleeper.kill('SIGKILL');
    }
  });
});

describe('SSH that never comes up', () => {
  it('fails at ssh-up with the ssh-diagnose verdict and the serial console, and leaves nothing running', async () => {
    const output = join(work, 'no-ssh.qcow2');
    const args = JSON.stringify(['-kernel', guest.kernel, '-initrd', guest.initrd, '-append', `${guest.kernelCmdline} hedgehog-lab.skip systemd.mask=ssh.service`]);
    const run = await runCli(['warm', '--image', guest.image, '--output', output, '--accelerator', 'tcg', '--memory', '1024', '--ssh-key-path', guest.privateKey, '--qemu-args', args, '--ssh-timeout-minutes', '1'], { timeoutMs: 300_000 });
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/warm failed at ssh-up: SSH to lab@127\.0\.0\.1:\d+ did not come up within \d+ s/);
    expect(run.stderr).toMatch(/ssh-diagnose 127\.0\.0\.1:\d+ as lab: /);
    expect(run.stderr).toContain(`Serial log ${output}.serial.log`);
    expect(existsSync(`${output}.overlay.qcow2`)).toBe(false);
    expect(qemuPids()).toEqual([]);
  }, 300_000);
});

describe('inputs', () => {
  it('refuses a missing image with the input name and the fix, before any work', async () => {
    const run = await runBundledAction('vlab-warm', { inputs: { image: join(work, 'nope.qcow2'), output: join(work, 'x.qcow2'), 'ssh-key-path': guest.privateKey } });
    expect(run.code).toBe(1);
    expect(run.errors[0]).toMatch(/^::error title=vlab-warm::image: .*nope\.qcow2 does not exist/);
  });

  it('refuses nested virtualization under TCG', async () => {
    const run = await runCli(['warm', '--image', guest.image, '--output', join(work, 'x.qcow2'), '--accelerator', 'tcg', '--nested', 'true', '--ssh-key-path', guest.privateKey]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('nested: needs accelerator kvm');
  });

  it('refuses a public key given as the private key', async () => {
    const run = await runCli(['warm', '--attach', '127.0.0.1:22', '--ssh-key-path', guest.publicKey]);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/ssh-key-path: .* is not a private key file/);
    expect(readFileSync(guest.publicKey, 'utf8')).toMatch(/^ssh-ed25519 /);
  });
});
