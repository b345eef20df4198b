/**
 * Real Packer qemu builds of the tiny test guest under TCG (about a minute each here): one that boots,
 * provisions over SSH and is packed into an OVA, and one whose guest refuses Packer's SSH key, where the
 * SSH watchdog's verdict must appear in the log and in the failure.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PackerBuildError, readPackerBuildOptions, runPackerBuild, type BuildReporter, type PackerBuildOptions } from '../../actions/lib/packer-build.js';
import { inputsFrom } from '../../actions/lib/inputs.js';
import { readOvaProperties } from '../../actions/lib/ova-read.js';
import { ensureTinyGuest, type TinyGuest } from '../support/tiny-guest.js';
import { repoRoot } from '../support/run-action.js';

const template = join(repoRoot, 'test', 'fixtures', 'packer', 'tiny-guest', 'tiny-guest.pkr.hcl');
let dir: string;
let guest: TinyGuest;

function recorder(): BuildReporter & { lines: string[]; groups: string[] } {
  const lines: string[] = [];
  const groups: string[] = [];
  return { lines, groups, line: (l) => lines.push(l), startGroup: (g) => groups.push(g), endGroup: () => undefined };
}

function options(name: string, over: Partial<PackerBuildOptions>, vars: Record<string, string> = {}): PackerBuildOptions {
  const base = readPackerBuildOptions(inputsFrom({ template, version: '1.0.0', accelerator: 'tcg', 'plugin-cache': 'false', 'expected-image-gib': '2', 'vm-memory-mib': '512' }));
  return {
    ...base,
    workingDirectory: dir,
    outputDir: join(dir, name, 'labforge-output'),
    vars: {
      image: guest.image,
      kernel: guest.kernel,
      initrd: guest.initrd,
      cmdline: guest.kernelCmdline,
      ssh_private_key_file: guest.privateKey,
      output_directory: join(dir, name, 'packer-output'),
      ...vars,
    },
    ...over,
  };
}

beforeAll(async () => {
  guest = await ensureTinyGuest();
  dir = mkdtempSync(join(tmpdir(), 'labforge-packer-qemu-'));
}, 900_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('Packer qemu builder on the tiny guest (TCG)', () => {
  it('boots by direct kernel boot, provisions over SSH, builds a qcow2 and packs the OVA', async () => {
    const rep = recorder();
    const r = await runPackerBuild(options('ok', { buildType: 'standard', version: '1.2.3', watchdog: { afterSeconds: 300, username: guest.user, privateKeyFile: guest.privateKey } }), { reporter: rep });
    expect(rep.lines).toContainEqual(expect.stringMatching(/qemu\.tiny: provisioning standard 1\.2\.3 on \d/));
    expect(rep.groups).toEqual(expect.arrayContaining(['packer: prepare', 'packer: boot', 'packer: wait-ssh', 'packer: provision', 'packer: shutdown', 'package: OVA']));
    expect(r.image).toBe(join(dir, 'ok', 'packer-output', 'tiny-guest.qcow2'));
    const info = JSON.parse(execFileSync('qemu-img', ['info', '--output=json', r.image!], { encoding: 'utf8' }));
    expect(info.format).toBe('qcow2');
    expect(await readOvaProperties(r.ova!.ova)).toMatchObject({ buildType: 'standard', version: '1.2.3' });
    expect(r.watchdog).toBeUndefined();
    expect(r.phases.find((p) => p.phase === 'wait-ssh')!.seconds).toBeGreaterThan(0);
  }, 300_000);

  it('when the guest refuses Packer’s key, the SSH watchdog names the cause in the log and in the failure', async () => {
    const wrongKey = join(dir, 'wrong_ed25519');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', wrongKey]);
    const rep = recorder();
    const err = await runPackerBuild(
      options('refused', { package: 'none', watchdog: { afterSeconds: 45, username: guest.user, privateKeyFile: wrongKey } }, { ssh_private_key_file: wrongKey, ssh_timeout: '80s' }),
      { reporter: rep },
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PackerBuildError);
    const watchdogLines = rep.lines.filter((l) => l.startsWith('SSH watchdog:'));
    expect(watchdogLines[0]).toMatch(/^SSH watchdog: Packer has waited 45 s for SSH; diagnosing 127\.0\.0\.1:\d+ as lab$/);
    expect(watchdogLines.join('\n')).toMatch(/auth-rejected/);
    expect((err as PackerBuildError).watchdog?.cause).toBe('auth-rejected');
    expect((err as Error).message).toMatch(/Timeout waiting for SSH[\s\S]*SSH watchdog verdict: auth-rejected - /);
  }, 300_000);
});
