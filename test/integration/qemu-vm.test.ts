/**
 * qemu-vm.ts against a real QEMU (TCG). No full boot here: the tiny guest's kernel is started without a root
 * file system, which panics within seconds — enough to see the serial console, the SSH port forward, an
 * ACPI power-down that nobody answers (so the SIGKILL fallback), and QEMU exiting on its own.
 */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startVm, VmStartError, type RunningVm } from '../../actions/lib/qemu-vm.js';
import { findFreePort } from '../../actions/lib/free-port.js';
import { ensureTinyGuest, type TinyGuest } from '../support/tiny-guest.js';

const sha256 = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function canConnect(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ port, host });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

describe('qemu-vm', () => {
  let guest: TinyGuest;
  let work: string;
  let disk: string;
  const started: RunningVm[] = [];

  beforeAll(async () => {
    guest = await ensureTinyGuest();
    work = mkdtempSync(join(tmpdir(), 'labforge-qemu-vm-test-'));
    disk = join(work, 'blank.raw');
    execFileSync('qemu-img', ['create', '-q', '-f', 'raw', disk, '8M']);
  }, 900_000);

  afterAll(async () => {
    for (const vm of started) await vm.kill();
    rmSync(work, { recursive: true, force: true });
  });

  const panicKernel = (append: string, extra: string[] = []) => ['-kernel', guest.kernel, '-append', `console=ttyS0 ${append}`, ...extra];

  it('refuses a missing image, naming it', async () => {
    await expect(startVm({ image: join(work, 'nope.qcow2'), accelerator: 'tcg', serialLog: join(work, 's.log') })).rejects.toThrow(/nope\.qcow2 does not exist/);
  });

  it('refuses nested virtualization under TCG', async () => {
    await expect(startVm({ image: disk, imageFormat: 'raw', accelerator: 'tcg', nested: true, serialLog: join(work, 's.log') })).rejects.toThrow(/nested virtualization needs accelerator 'kvm'/);
  });

  it('makes the overlay (qemu-img create) backed by the image, and reports qemu-img failing', async () => {
    const overlay = join(work, 'over lay.qcow2');
    await startVm({ image: disk, imageFormat: 'raw', overlay, accelerator: 'tcg', serialLog: join(work, 's.log'), extraArgs: ['-no-such-option'] }).catch(() => undefined);
    const info = JSON.parse(execFileSync('qemu-img', ['info', '--output=json', overlay], { encoding: 'utf8' })) as Record<string, string>;
    expect(info).toMatchObject({ format: 'qcow2', 'backing-filename': disk, 'backing-filename-format': 'raw' });
    const err = await startVm({ image: disk, imageFormat: 'qcow2', overlay: join(work, 'wrong-format.qcow2'), accelerator: 'tcg', serialLog: join(work, 's.log') }).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/^Command failed: qemu-img create -q -f qcow2 -F qcow2 -b \S+blank\.raw \S+wrong-format\.qcow2\n.*qemu-img: /s);
  });

  it('reports what QEMU said when it cannot start', async () => {
    const err = await startVm({ image: disk, imageFormat: 'raw', accelerator: 'tcg', serialLog: join(work, 's.log'), extraArgs: ['-no-such-option'] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VmStartError);
    expect((err as VmStartError).message).toMatch(/no-such-option/);
  });

  it('shows the serial console, forwards SSH on 127.0.0.1, and kills the process group when ACPI is ignored', async () => {
    const before = sha256(disk);
    const serialLog = join(work, 'panic.log');
    const vm = await startVm({ image: disk, imageFormat: 'raw', accelerator: 'tcg', memoryMiB: 256, cpus: 1, serialLog, snapshot: true, extraArgs: panicKernel('panic=0') });
    started.push(vm);
    expect(isAlive(vm.pid)).toBe(true);
    // QEMU is its own process group leader.
    expect(execFileSync('ps', ['-o', 'pgid=', '-p', String(vm.pid)]).toString().trim()).toBe(String(vm.pid));
    expect(await canConnect(vm.sshPort, '127.0.0.1')).toBe(true);
    const m = await vm.waitForSerial(/Kernel panic - not syncing: (.*)/, 180_000);
    expect(m[1]).toMatch(/VFS|root/i);
    expect(readFileSync(serialLog, 'utf8')).toContain('Kernel panic');
    // A panicked kernel never answers the power button: shutdown must fall back to SIGKILL.
    const t0 = Date.now();
    const result = await vm.shutdown({ timeoutMs: 1_500 });
    expect(result.clean).toBe(false);
    expect(result.exit.signal).toBe('SIGKILL');
    expect(Date.now() - t0).toBeLessThan(15_000);
    expect(isAlive(vm.pid)).toBe(false);
    expect(vm.isRunning()).toBe(false);
    expect(sha256(disk)).toBe(before);
  }, 240_000);

  it('rejects a serial wait as soon as QEMU exits', async () => {
    const vm = await startVm({ image: disk, imageFormat: 'raw', accelerator: 'tcg', memoryMiB: 256, cpus: 1, serialLog: join(work, 'exit.log'), snapshot: true, extraArgs: panicKernel('panic=1', ['-no-reboot']) });
    started.push(vm);
    await expect(vm.waitForSerial(/this never appears/, 180_000)).rejects.toThrow(/QEMU exited .*before the serial console showed/s);
    expect((await vm.exited).code).toBe(0);
  }, 240_000);

  it('uses the SSH port it is given, and reports a taken one', async () => {
    const port = await findFreePort();
    const vm = await startVm({ image: disk, imageFormat: 'raw', accelerator: 'tcg', memoryMiB: 128, cpus: 1, serialLog: join(work, 'p1.log'), snapshot: true, sshPort: port, extraArgs: panicKernel('panic=0') });
    started.push(vm);
    expect(vm.sshPort).toBe(port);
    const second = await startVm({ image: disk, imageFormat: 'raw', accelerator: 'tcg', memoryMiB: 128, cpus: 1, serialLog: join(work, 'p2.log'), snapshot: true, sshPort: port }).catch((e: unknown) => e);
    expect(second).toBeInstanceOf(VmStartError);
    expect((second as VmStartError).stderr).toMatch(/hostfwd|forwarding/i);
    await vm.kill();
    expect(isAlive(vm.pid)).toBe(false);
  }, 120_000);
});
