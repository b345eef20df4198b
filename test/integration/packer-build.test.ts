/**
 * runPackerBuild with real Packer (Debian's 1.6.6) on fast templates: the null and file builders and
 * shell-local provisioners (test/fixtures/packer/fast). No VM is booted here; see test/e2e for the qemu runs.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PackerBuildError, buildOutputs, readPackerBuildOptions, runPackerBuild, type BuildLeftovers, type BuildReporter, type PackerBuildOptions } from '../../actions/lib/packer-build.js';
import { inputsFrom } from '../../actions/lib/inputs.js';
import { readOvaProperties } from '../../actions/lib/ova-read.js';
import { repoRoot } from '../support/run-action.js';
import { createTestUser, generateClientKey, startSshd, type Sshd, type TestUser, type ClientKey } from '../support/sshd.js';

const fixtures = join(repoRoot, 'test', 'fixtures', 'packer', 'fast');
let dir: string;

function recorder(): BuildReporter & { lines: string[]; groups: string[] } {
  const lines: string[] = [];
  const groups: string[] = [];
  return { lines, groups, line: (l) => lines.push(l), startGroup: (g) => groups.push(g), endGroup: () => undefined };
}

function options(over: Partial<PackerBuildOptions>): PackerBuildOptions {
  return {
    ...readPackerBuildOptions(inputsFrom({ template: 'x', version: '1.0.0', accelerator: 'tcg', 'plugin-cache': 'false', package: 'none', 'expected-image-gib': '1', 'vm-memory-mib': '128' })),
    workingDirectory: dir,
    ...over,
  };
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'labforge-packer-build-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('a successful build', () => {
  it('streams timestamped lines grouped by phase, lists the artifacts and keeps the Packer log', async () => {
    const rep = recorder();
    const r = await runPackerBuild(options({ template: join(fixtures, 'ok.pkr.hcl'), buildType: 'prewarmed', version: '2.0.0', vars: { greeting: 'hi there' } }), { reporter: rep });
    expect(rep.lines).toContainEqual(expect.stringMatching(/^\[\d\d:\d\d:\d\d\] +null\.one: building prewarmed 2\.0\.0, with a comma$/));
    expect(rep.lines).toContainEqual(expect.stringMatching(/greeting=hi there$/));
    expect(rep.lines).toContainEqual('packer 1.6.6: no \'packer init\' before 1.7.0, skipped (builders are built in)');
    expect(rep.groups).toEqual(expect.arrayContaining(['preflight', 'packer: provision', 'packer: finish']));
    expect(r.artifacts.map((a) => [a.build, a.builderId, a.files]).sort()).toEqual([
      ['file.out', 'packer.file', ['out.txt']],
      ['null.one', 'fnoeding.null', []],
    ]);
    expect(readFileSync(join(dir, 'out.txt'), 'utf8')).toBe('hi there, prewarmed 2.0.0');
    expect(r.buildLog).toBe(join(dir, 'labforge-output', 'packer-build.log'));
    expect(readFileSync(r.buildLog, 'utf8')).toMatch(/Packer version: 1\.6\.6/);
    expect(r.versions.packer).toBe('1.6.6');
    expect(r.notes).toContain("packer 1.6.6 has no 'packer init' (it came in 1.7.0); its builders are built in");
    expect(r.phases.map((p) => p.phase)).toEqual(expect.arrayContaining(['preflight', 'validate', 'provision', 'finish', 'package']));
    expect(r.image).toBeUndefined();
    expect(buildOutputs(r)).toMatchObject({ image: '', ova: '', 'build-log': r.buildLog });
  });

  it('builds a qcow2 artifact and packs it into an OVA with the build type', async () => {
    const image = join(dir, 'src.qcow2');
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', image, '64M']);
    const rep = recorder();
    const r = await runPackerBuild(options({ template: join(fixtures, 'image.pkr.hcl'), buildType: 'standard', version: '1.5.0', vars: { image }, package: 'ova' }), { reporter: rep });
    expect(r.image).toBe(join(dir, 'built', 'appliance.qcow2'));
    expect(rep.lines).toContainEqual(expect.stringMatching(/copied the image for standard 1\.5\.0 \(accelerator tcg\)/));
    expect(r.ova?.ova).toBe(join(dir, 'labforge-output', 'hedgehog-lab-standard-1.5.0.ova'));
    expect(await readOvaProperties(r.ova!.ova)).toMatchObject({ buildType: 'standard', version: '1.5.0' });
    expect(rep.groups).toContain('package: OVA');
  });
});

describe('failures', () => {
  it('fails with Packer’s error and the log path when a provisioner fails', async () => {
    const err = await runPackerBuild(options({ template: join(fixtures, 'fail.pkr.hcl') }), { reporter: recorder() }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PackerBuildError);
    expect((err as Error).message).toMatch(/^build: packer build failed: .*Script exited with non-zero exit status: 3/);
    expect((err as Error).message).toContain(`build log: ${join(dir, 'labforge-output', 'packer-build.log')}`);
  });

  it('fails at validate for a template that does not parse', async () => {
    const err = await runPackerBuild(options({ template: join(fixtures, 'broken.pkr.hcl') }), { reporter: recorder() }).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/^validate: packer validate failed: /);
  });

  it('says so when package is ova but the build made no disk image', async () => {
    const err = await runPackerBuild(options({ template: join(fixtures, 'ok.pkr.hcl'), package: 'ova' }), { reporter: recorder() }).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/^package: the build produced no qcow2 disk image to pack \(artifacts: out\.txt\); set package: none/);
  });

  it('names a template that does not exist as an input error', async () => {
    await expect(runPackerBuild(options({ template: 'nope.pkr.hcl' }), { reporter: recorder() })).rejects.toMatchObject({ name: 'InputError', input: 'template' });
  });

  it('stops in preflight without KVM when the accelerator is kvm', async () => {
    const err = await runPackerBuild(options({ template: join(fixtures, 'ok.pkr.hcl'), accelerator: 'kvm', kvmDevice: join(dir, 'no-kvm') }), { reporter: recorder() }).catch((e: unknown) => e);
    expect((err as Error).name).toBe('PreflightError');
    expect((err as Error).message).toMatch(/^preflight kvm: .*no-kvm does not exist.*\(fix: .*accelerator: tcg/);
  });
});

describe('timeouts and cancellation', () => {
  it('stops Packer’s whole process group when the timeout passes', async () => {
    const pidFile = join(dir, 'timeout.pids');
    const rep = recorder();
    const t0 = Date.now();
    const err = await runPackerBuild(options({ template: join(fixtures, 'slow.pkr.hcl'), vars: { pid_file: pidFile }, timeoutMinutes: 0.1 }), { reporter: rep }).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/^build: the build timed out after 0\.1 minute\(s\)/);
    expect(Date.now() - t0).toBeLessThan(30_000);
    const pids = readFileSync(pidFile, 'utf8').trim().split('\n').map(Number);
    expect(pids).toHaveLength(2);
    for (const pid of pids) expect(alive(pid)).toBe(false);
  }, 60_000);

  it('on cancel: Packer, its children and the temporary files are gone within 10 s', async () => {
    const pidFile = join(dir, 'cancel.pids');
    const controller = new AbortController();
    const left: BuildLeftovers = {};
    const rep = recorder();
    const pending = runPackerBuild(options({ template: join(fixtures, 'slow.pkr.hcl'), vars: { pid_file: pidFile } }), {
      reporter: rep,
      signal: controller.signal,
      onLeftovers: (l) => Object.assign(left, l),
    });
    for (let i = 0; i < 300 && !rep.lines.some((l) => l.includes('started the long step')); i++) await new Promise((r) => setTimeout(r, 100));
    expect(left.pgid).toBeGreaterThan(0);
    expect(existsSync(left.workDir!)).toBe(true);
    // Packer put its shell-local script into our TMPDIR.
    expect(readdirSync(join(left.workDir!, 'tmp')).some((f) => f.startsWith('packer-shell'))).toBe(true);
    const t0 = Date.now();
    controller.abort();
    const err = await pending.catch((e: unknown) => e);
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect((err as Error).message).toMatch(/cancel/);
    expect(() => process.kill(-left.pgid!, 0)).toThrow();
    for (const pid of readFileSync(pidFile, 'utf8').trim().split('\n').map(Number)) expect(alive(pid)).toBe(false);
    expect(existsSync(left.workDir!)).toBe(false);
  }, 60_000);
});

describe('SSH watchdog: the null builder against a real sshd on 127.0.0.1', () => {
  let sshd: Sshd;
  let user: TestUser;
  let good: ClientKey;
  let wrong: ClientKey;
  beforeAll(async () => {
    good = generateClientKey(dir);
    wrong = generateClientKey(dir);
    user = await createTestUser({ authorizedKeys: [good.publicKey] });
    sshd = await startSshd();
  });
  afterAll(async () => {
    await sshd?.stop();
    await user?.remove();
  });

  it('stays quiet when Packer connects, and Packer provisions over SSH', async () => {
    const rep = recorder();
    const r = await runPackerBuild(
      options({ template: join(fixtures, 'ssh-null.pkr.hcl'), vars: { ssh_port: String(sshd.port), ssh_username: user.name, ssh_private_key_file: good.path }, watchdog: { afterSeconds: 20, username: user.name, privateKeyFile: good.path } }),
      { reporter: rep },
    );
    expect(rep.lines).toContainEqual(expect.stringMatching(new RegExp(`null\\.ssh: provisioned over ssh as ${user.name}$`)));
    expect(rep.lines.filter((l) => l.startsWith('SSH watchdog:'))).toEqual([]);
    expect(r.watchdog).toBeUndefined();
  }, 60_000);

  it('diagnoses the port from Packer’s log while Packer waits, and puts the verdict into the failure', async () => {
    const rep = recorder();
    const err = await runPackerBuild(
      options({
        template: join(fixtures, 'ssh-null.pkr.hcl'),
        vars: { ssh_port: String(sshd.port), ssh_username: user.name, ssh_private_key_file: wrong.path, ssh_timeout: '12s' },
        watchdog: { afterSeconds: 3, username: user.name, privateKeyFile: wrong.path },
      }),
      { reporter: rep },
    ).catch((e: unknown) => e);
    const watchdog = rep.lines.filter((l) => l.startsWith('SSH watchdog:'));
    expect(watchdog[0]).toBe(`SSH watchdog: Packer has waited 3 s for SSH; diagnosing 127.0.0.1:${sshd.port} as ${user.name}`);
    expect(watchdog.join('\n')).toMatch(/auth-rejected/);
    expect(err).toBeInstanceOf(PackerBuildError);
    expect((err as PackerBuildError).watchdog?.cause).toBe('auth-rejected');
    expect((err as Error).message).toMatch(/^build: packer build failed: .*Timeout waiting for SSH[\s\S]*\nSSH watchdog verdict: auth-rejected - .+; fix: /);
  }, 60_000);
});

describe('packer-build inputs', () => {
  it('reads vars as key=value lines and rejects anything else, naming the input', () => {
    expect(readPackerBuildOptions(inputsFrom({ template: 't', version: '1.0.0', vars: 'a=1\n# note\nb = two words\n' })).vars).toEqual({ a: '1', b: 'two words' });
    expect(() => readPackerBuildOptions(inputsFrom({ template: 't', version: '1.0.0', vars: 'oops' }))).toThrow(/^vars: 'oops' is not key=value/);
  });
  it('defaults to kvm, cleanup, ova and the plugin cache', () => {
    expect(readPackerBuildOptions(inputsFrom({ template: 't', version: '1.0.0' }))).toMatchObject({ accelerator: 'kvm', onError: 'cleanup', package: 'ova', pluginCache: true, timeoutMinutes: 120 });
  });
  it('rejects an unknown on-error or package value', () => {
    expect(() => readPackerBuildOptions(inputsFrom({ template: 't', version: '1.0.0', 'on-error': 'ask' }))).toThrow(/^on-error:/);
    expect(() => readPackerBuildOptions(inputsFrom({ template: 't', version: '1.0.0', package: 'zip' }))).toThrow(/^package:/);
  });
});
