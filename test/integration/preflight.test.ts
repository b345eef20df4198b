import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PreflightError, assertPreflight, checkFreeDisk, checkKvm, checkMemory, checkTool, compareVersions, readPreflightOptions, runPreflight } from '../../actions/lib/preflight.js';
import { inputsFrom } from '../../actions/lib/inputs.js';
import { repoRoot } from '../support/run-action.js';

let dir: string;
const isRoot = process.getuid?.() === 0;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'labforge-preflight-'));
  chmodSync(dir, 0o755);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('KVM check', () => {
  it('fails with the fix when the KVM device does not exist', async () => {
    const v = await checkKvm({ accelerator: 'kvm', devicePath: join(dir, 'kvm-missing') });
    expect(v.ok).toBe(false);
    expect(v.detail).toMatch(/kvm-missing does not exist: this machine offers no KVM/);
    expect(v.fix).toMatch(/KVM runner.*accelerator: tcg/);
  });

  it('reads this machine’s real /dev/kvm the same way', async () => {
    const v = await checkKvm({ accelerator: 'kvm' });
    if (!existsSync('/dev/kvm')) expect(v.detail).toBe('/dev/kvm does not exist: this machine offers no KVM (no hardware virtualization, or the kvm module is not loaded)');
    expect(v.ok).toBe(existsSync('/dev/kvm'));
  });

  it('passes without a KVM device when tcg is asked for explicitly', async () => {
    const v = await checkKvm({ accelerator: 'tcg', devicePath: join(dir, 'kvm-missing') });
    expect(v).toMatchObject({ ok: true, check: 'kvm' });
    expect(v.detail).toMatch(/tcg was asked for explicitly/);
  });

  it('fails for a file that is not a device, and never suggests removing it (issue 15)', async () => {
    const file = join(dir, 'kvm-file');
    writeFileSync(file, 'a file of the user');
    const v = await checkKvm({ accelerator: 'kvm', devicePath: file });
    expect(v).toEqual({
      check: 'kvm',
      ok: false,
      detail: `kvm-device ${file} is a regular file, not the KVM device (character device 10:232)`,
      fix: 'give the KVM device in kvm-device (default /dev/kvm), or set accelerator: tcg for a slow test build',
    });
    expect(`${v.detail} ${v.fix}`).not.toMatch(/\b(remove|delete|rm)\b/i);
    const asDir = await checkKvm({ accelerator: 'kvm', devicePath: dir });
    expect(asDir.detail).toBe(`kvm-device ${dir} is a directory, not the KVM device (character device 10:232)`);
    expect(`${asDir.detail} ${asDir.fix}`).not.toMatch(/\b(remove|delete|rm)\b/i);
  });

  it('refuses a character device that is not KVM: /dev/null opens read-write but is 1:3', async () => {
    const v = await checkKvm({ accelerator: 'kvm', devicePath: '/dev/null' });
    expect(v).toMatchObject({ ok: false, detail: 'kvm-device /dev/null is character device 1:3, not the KVM device (10:232)' });
    expect(v.fix).not.toMatch(/\b(remove|delete|rm)\b/i);
  });

  (isRoot ? it : it.skip)('takes a 10:232 node for KVM only when a driver answers it, and names a user who cannot open it (run as nobody)', async () => {
    const open = join(dir, 'kvm-open');
    const closed = join(dir, 'kvm-closed');
    // Nodes with KVM's own numbers: they open only when the kvm module is loaded (then /dev/kvm exists too).
    execFileSync('mknod', ['-m', '0666', open, 'c', '10', '232']);
    execFileSync('mknod', ['-m', '0600', closed, 'c', '10', '232']);
    const v = await checkKvm({ accelerator: 'kvm', devicePath: open });
    if (existsSync('/dev/kvm')) expect(v).toMatchObject({ ok: true, detail: `${open} is the KVM device (10:232) and opens read-write` });
    else expect(v).toMatchObject({ ok: false, detail: expect.stringMatching(new RegExp(`^kvm-device ${open} is the KVM device node \\(10:232\\) but no KVM driver answers it \\((ENXIO|ENODEV)\\): the kvm module is not loaded$`)) });
    // The same check as an unprivileged user, through the CLI: the device exists but does not open.
    const run = spawnSync(process.execPath, [join(repoRoot, 'bin', 'labforge'), 'preflight', '--accelerator', 'kvm', '--kvm-device', closed, '--expected-image-gib', '1', '--vm-memory-mib', '128', '--output-dir', dir], {
      env: { PATH: process.env.PATH, USER: 'nobody', HOME: dir },
      uid: 65534,
      gid: 65534,
      encoding: 'utf8',
    });
    const code = run.status;
    expect(code).toBe(1);
    expect(run.stderr).toMatch(new RegExp(`FAIL kvm: ${closed} is not read-write for nobody \\(EACCES\\) \\(fix: add the user to the kvm group`));
  });
});

describe('tool checks', () => {
  it('finds packer, qemu and qemu-img with their versions', async () => {
    expect(await checkTool({ check: 'packer', command: 'packer', versionArgs: ['version'], install: 'x', minimum: '1.6.0' })).toMatchObject({ ok: true, version: '1.6.6' });
    const qemu = await checkTool({ check: 'qemu', command: 'qemu-system-x86_64', versionArgs: ['--version'], install: 'x' });
    expect(qemu.ok).toBe(true);
    expect(qemu.version).toMatch(/^\d+\.\d+\.\d+$/);
  });

  it('says how to install a tool that is missing', async () => {
    const v = await checkTool({ check: 'packer', command: join(dir, 'no-packer'), versionArgs: ['version'], install: 'install Packer 1.6 or newer' });
    expect(v).toMatchObject({ ok: false, detail: `${join(dir, 'no-packer')} was not found`, fix: 'install Packer 1.6 or newer' });
  });

  it('rejects a tool older than the minimum', async () => {
    const old = join(dir, 'old-packer');
    writeFileSync(old, '#!/bin/sh\necho "Packer v1.2.5"\n', { mode: 0o755 });
    const v = await checkTool({ check: 'packer', command: old, versionArgs: ['version'], install: 'upgrade', minimum: '1.6.0' });
    expect(v).toMatchObject({ ok: false, version: '1.2.5', fix: 'upgrade' });
    expect(v.detail).toMatch(/older than 1\.6\.0/);
  });

  it('compares dotted versions numerically', () => {
    expect(compareVersions('1.10.0', '1.9.9')).toBeGreaterThan(0);
    expect(compareVersions('1.6', '1.6.0')).toBe(0);
    expect(compareVersions('1.6.6', '1.7.0')).toBeLessThan(0);
  });
});

describe('disk and memory checks', () => {
  it('passes with enough free disk and fails, with the sizes, without', async () => {
    expect(await checkFreeDisk({ path: dir, requiredBytes: 1024 })).toMatchObject({ ok: true });
    const v = await checkFreeDisk({ path: dir, requiredBytes: 2 ** 60 });
    expect(v.ok).toBe(false);
    expect(v.detail).toMatch(/GiB free under .*need about 1073741824\.0 GiB/);
  });

  it('fails for an output directory that does not exist', async () => {
    expect(await checkFreeDisk({ path: join(dir, 'nope'), requiredBytes: 1 })).toMatchObject({ ok: false, fix: 'create the output directory or choose another one' });
  });

  it('reads MemAvailable and fails when the VM does not fit', async () => {
    const meminfo = join(dir, 'meminfo');
    writeFileSync(meminfo, 'MemTotal:       4000000 kB\nMemFree:         100000 kB\nMemAvailable:    1048576 kB\n');
    expect(await checkMemory({ requiredMiB: 1000, meminfoPath: meminfo })).toMatchObject({ ok: true });
    expect(await checkMemory({ requiredMiB: 2048, meminfoPath: meminfo })).toMatchObject({ ok: false, detail: '1024 MiB memory available, the VM needs 2048 MiB' });
    expect(await checkMemory({ requiredMiB: 64 })).toMatchObject({ ok: true });
  });
});

describe('the whole preflight', () => {
  it('passes on this machine for a small tcg build and reports the versions', async () => {
    const r = await runPreflight({ accelerator: 'tcg', outputDir: dir, requiredDiskBytes: 2 ** 20, requiredMemoryMiB: 256 });
    expect(r.ok).toBe(true);
    expect(Object.keys(r.versions).sort()).toEqual(['packer', 'qemu', 'qemu-img']);
  });

  it('lists every failure on its own line with the fix', async () => {
    const err = await assertPreflight({ accelerator: 'kvm', kvmDevice: join(dir, 'kvm-missing'), outputDir: dir, requiredDiskBytes: 2 ** 60, requiredMemoryMiB: 256, packer: join(dir, 'no-packer') }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PreflightError);
    const lines = (err as Error).message.split('\n');
    expect(lines.map((l) => l.replace(/:.*/, ''))).toEqual(['preflight packer', 'preflight kvm', 'preflight disk', 'preflight']);
    for (const l of lines.slice(0, -1)) expect(l).toMatch(/\(fix: .+\)$/);
    // The missing program's Debian package, in one line.
    expect(lines.at(-1)).toBe('preflight: install what is missing, as root: apt-get install -y packer');
  });

  it('reads its inputs: kvm unless tcg is asked for, twice the image size on disk', () => {
    expect(readPreflightOptions(inputsFrom({}))).toMatchObject({ accelerator: 'kvm', requiredDiskBytes: 80 * 2 ** 30, requiredMemoryMiB: 4608 });
    expect(() => readPreflightOptions(inputsFrom({ accelerator: 'hvf' }))).toThrow(/^accelerator: 'hvf' is not one of kvm, tcg/);
  });
});
