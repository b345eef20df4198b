/**
 * A real Packer qemu build of the tiny test guest under TCG whose guest refuses Packer's SSH key: the SSH
 * watchdog's verdict must appear in the log and in the failure. (A successful qemu build — boot, provision over
 * SSH, shutdown, the phases grouped — is the demo appliance's build by `labforge pipeline` in
 * test/e2e/pipeline.test.ts, and through the workflows in test/e2e/workflows.test.ts.)
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PackerBuildError, readPackerBuildOptions, runPackerBuild, type BuildReporter, type PackerBuildOptions } from '../../actions/lib/packer-build.js';
import { inputsFrom } from '../../actions/lib/inputs.js';
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
  it('when the guest refuses Packer’s key, the SSH watchdog names the cause in the log and in the failure', async () => {
    const wrongKey = join(dir, 'wrong_ed25519');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', wrongKey]);
    const rep = recorder();
    // Packer gives up after ssh_timeout; the guest must have its sshd up well before that, or there is nothing to
    // reject the key. Idle, it is up in about 40 s; with CI's three test lanes on 2 cores it was still not up at
    // 68 s once, so 150 s (the watchdog then looks at 45 s and every 23 s after).
    const err = await runPackerBuild(
      options('refused', { package: 'none', watchdog: { afterSeconds: 45, username: guest.user, privateKeyFile: wrongKey } }, { ssh_private_key_file: wrongKey, ssh_timeout: '150s' }),
      { reporter: rep },
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PackerBuildError);
    const watchdogLines = rep.lines.filter((l) => l.startsWith('SSH watchdog:'));
    expect(watchdogLines[0]).toMatch(/^SSH watchdog: Packer has waited 45 s for SSH; diagnosing 127\.0\.0\.1:\d+ as lab$/);
    expect(watchdogLines.join('\n')).toMatch(/auth-rejected/);
    expect((err as PackerBuildError).watchdog?.cause).toBe('auth-rejected');
    // Packer ends with a timeout, or earlier when its SSH handshake attempts are used up (as at idle, ~100 s in).
    expect((err as Error).message).toMatch(/(Timeout waiting for SSH|authentication error)[\s\S]*SSH watchdog verdict: auth-rejected - .*; fix: Key not authorized: /);
  }, 300_000);
});
