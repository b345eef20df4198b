/**
 * vlab-warm against the tiny real guest under TCG: the action bundle warms a standard image and its output's
 * first boot only resumes; attach mode against a running guest (a failing readiness check writes no
 * marker); cancellation mid-init and the post step leave no QEMU and no overlay behind.
 */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, readFileSync } from 'node:fs';
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
/** The tiny guest keeps its test key after sealing, so tests can log in to the output. */
const TEST_SEAL = 'sudo -n /usr/local/sbin/hedgehog-lab-seal';

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

describe('warming a standard image (action bundle, TCG)', () => {
  it('writes the marker only after readiness, and the output’s first boot resumes the lab', async () => {
    const output = join(work, 'prewarmed.qcow2');
    const run = await runBundledAction('vlab-warm', {
      inputs: {
        image: guest.image,
        output,
        accelerator: 'tcg',
        memory: '1024',
        'ssh-key-path': guest.privateKey,
        'qemu-args': warmQemuArgs(guest),
        'seal-command': TEST_SEAL,
        version: '1.4.0',
      },
      timeoutMs: 600_000,
    });
    expect(run.errors).toEqual([]);
    expect(run.code).toBe(0);
    expect(run.outputs.image).toBe(output);
    const timeline = JSON.parse(run.outputs.timeline ?? '{}') as Record<string, number>;
    expect(Object.keys(timeline)).toEqual(['overlay', 'boot', 'ssh-up', 'init', 'ready', 'mark', 'seal', 'shutdown', 'flatten']);
    expect(Number(run.outputs['warm-seconds'])).toBeGreaterThan(timeline['init']!);
    // the order of the remote work in the log: init, then the readiness proof, then the marker
    const log = run.stdout;
    expect(log.indexOf('build-init')).toBeLessThan(log.indexOf('lab ready'));
    expect(log.indexOf('lab ready')).toBeLessThan(log.indexOf('marker /etc/hedgehog-lab/build-type = prewarmed'));
    expect(run.summary).toContain('pre-warmed in');
    // nothing left behind; the standard image untouched
    const pid = Number(/QEMU pid (\d+)/.exec(log)?.[1]);
    expect(alive(pid)).toBe(false);
    expect(existsSync(`${output}.overlay.qcow2`)).toBe(false);
    expect(spawnSync('qemu-img', ['info', '--output=json', output], { encoding: 'utf8' }).stdout).not.toContain('backing-filename');

    // first boot of the pre-warmed image: the boot service resumes (no second init)
    const vm = await bootTinyGuest({ guest: { ...guest, image: output } });
    started.push(vm);
    const ready = await vm.waitForSerial(/hedgehog-lab: ready build-type=(\S+) mode=(\S+) seconds=(\d+)/, 300_000);
    expect([ready[1], ready[2]]).toEqual(['prewarmed', 'resume']);
    expect((await vm.exec('cat /etc/hedgehog-lab/build-type')).stdout).toBe('prewarmed\n');
    const manifest = JSON.parse((await vm.exec('cat /var/lib/hedgehog-lab/warm-manifest.json')).stdout) as Manifest;
    expect(manifest).toMatchObject({ buildType: 'prewarmed', labVersion: '1.4.0', mode: 'boot', readiness: { exitCode: 0 } });
    expect(manifest.readiness.status).toMatchObject({ buildType: 'standard' });
    expect(manifest.timings.init).toBeGreaterThan(0);
    const status = JSON.parse((await vm.exec('sudo -n /usr/local/sbin/hedgehog-lab status --json')).stdout) as Manifest;
    expect(status.driverStatus).toMatchObject({ initCount: 1, ready: true });
    expect(status.driverStatus.resumeCount).toBeGreaterThanOrEqual(1);
    await vm.stop();
  }, 900_000);
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
