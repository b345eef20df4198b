/**
 * The preflight refuses a host smaller than the chosen Hedgehog topology before Packer starts: one line per
 * shortfall, saying what the profile needs and what is here (issue 14). Real preflight checks on this machine
 * (2 cores, a few GiB of memory): the Hedgehog profiles need 24 or 48 vCPUs and 23 or 42.5 GiB.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { InputError, inputsFrom } from '../../actions/lib/inputs.js';
import { readPackerBuildOptions, runPackerBuild, type BuildReporter } from '../../actions/lib/packer-build.js';
import { checkCpus, checkFreeDisk, localPreflightOptions, profileDiskNeeds } from '../../actions/lib/preflight.js';
import { chooseResources, loadAppliance } from '../../actions/lib/appliance.js';
import { statfsSync } from 'node:fs';
import { repoRoot } from '../support/run-action.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'labforge-hh-preflight-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const quiet: BuildReporter = { line: () => undefined, startGroup: () => undefined, endGroup: () => undefined };

describe('the preflight compares the host with the chosen topology', () => {
  it('fewer CPUs than the profile gives the VM fail with what is needed and what is there', () => {
    expect(checkCpus({ requiredCpus: 24, cpuCount: 8, profile: 'small' })).toEqual({
      check: 'cpus',
      ok: false,
      detail: '8 CPUs here, the VM needs 24 (resource profile small)',
      fix: 'use a runner with more cores, or choose a smaller profile (input profile)',
    });
    expect(checkCpus({ requiredCpus: 24, cpuCount: 24 })).toEqual({ check: 'cpus', ok: true, detail: '24 CPUs (need 24)' });
  });

  it.each([
    ['small', 24, 23552],
    ['default', 48, 43520],
  ])('packer-build of the %s topology stops at the preflight on this machine, before Packer starts', async (profile, cpus, memoryMiB) => {
    // This machine is smaller than either topology; on a machine that is not, there is nothing to refuse.
    if (availableParallelism() >= cpus) return;
    const out = join(dir, profile);
    const options = readPackerBuildOptions(inputsFrom({ appliance: join(repoRoot, 'packer/hedgehog-lab'), profile, version: '1.0.0', 'output-dir': out, 'plugin-cache': 'false' }));
    const started = Date.now();
    const err = await runPackerBuild(options, { reporter: quiet }).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(err?.message).toContain(`preflight cpus: ${availableParallelism()} CPUs here, the VM needs ${cpus} (resource profile ${profile})`);
    expect(err?.message).toMatch(new RegExp(`preflight memory: \\d+ MiB memory available, the VM needs ${memoryMiB + 512} MiB`));
    // and its disk: the profile's disk-gib plus the 40 GiB OVA (profileDiskNeeds), where this machine has less free
    const fsStat = statfsSync(dir);
    const needGiB = (profile === 'small' ? 320 : 510) + 40;
    if (fsStat.bavail * fsStat.bsize < needGiB * 2 ** 30) expect(err?.message).toMatch(new RegExp(`preflight disk: .* free under \\S+, resource profile ${profile} \\(its ${needGiB - 40} GiB disk \\+ a 40 GiB OVA\\) needs ${needGiB}\\.0 GiB`));
    // one line per failed check, no stack trace
    for (const line of err!.message.split('\n')) expect(line).toMatch(/^preflight( [a-z-]+)?: /);
    // Packer never ran: no build log, and it took seconds
    expect(existsSync(join(out, 'packer-build.log'))).toBe(false);
    expect(Date.now() - started).toBeLessThan(60_000);
  }, 120_000);
});

describe("the preflight wants the chosen profile's disk free (issue 14)", () => {
  it("packer-build refuses a host with less free disk than the profile's disk before Packer starts", async () => {
    // demo-lab builds under TCG on this machine; only its disk, raised to 60000 GiB, does not fit here.
    const out = join(dir, 'big-disk');
    const options = readPackerBuildOptions(inputsFrom({ appliance: join(repoRoot, 'packer/demo-lab'), 'disk-gib': '60000', accelerator: 'tcg', version: '1.0.0', 'output-dir': out, 'plugin-cache': 'false' }));
    const err = await runPackerBuild(options, { reporter: quiet }).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(err?.message).toMatch(/^preflight disk: \d+\.\d GiB free under \S+, resource profile \S+ \(its 60000 GiB disk \+ a 4 GiB OVA\) needs 60004\.0 GiB \(fix: /m);
    // only the disk fails: one line, and Packer never ran
    expect(err!.message.split('\n').filter((l) => l.startsWith('preflight'))).toHaveLength(1);
    expect(existsSync(join(out, 'packer-build.log'))).toBe(false);
  }, 60_000);

  const hedgehog = join(repoRoot, 'packer/hedgehog-lab');

  it.each([
    ['small', 320],
    ['default', 510],
  ])('the %s profile needs its %i GiB disk and the 40 GiB OVA', async (profile, diskGiB) => {
    const app = await loadAppliance(hedgehog);
    const resources = chooseResources(app, { profile });
    expect(resources.diskGiB).toBe(diskGiB);
    const o = localPreflightOptions({ appliance: app, resources, outDir: dir });
    expect(o.requiredDiskBytes).toBe((diskGiB + 40) * 2 ** 30);
    expect(o.diskBasis).toBe(`resource profile ${profile} (its ${diskGiB} GiB disk + a 40 GiB OVA)`);
  });

  it('a disk with less free space fails with one line: what is needed, what is there', async () => {
    const needs = profileDiskNeeds({ expectedImageGiB: 40, diskGiB: 320, profile: 'small' });
    const fs = statfsSync(dir);
    const free = fs.bavail * fs.bsize;
    // This machine has less than 360 GiB free; on one that has more, the check passes and says so.
    const v = await checkFreeDisk({ path: dir, requiredBytes: needs.requiredDiskBytes, basis: needs.diskBasis! });
    if (free < needs.requiredDiskBytes) {
      expect(v).toMatchObject({ check: 'disk', ok: false });
      expect(v.detail).toMatch(new RegExp(`^\\d+\\.\\d GiB free under ${dir}, resource profile small \\(its 320 GiB disk \\+ a 40 GiB OVA\\) needs 360\\.0 GiB$`));
    } else {
      expect(v).toMatchObject({ ok: true, detail: expect.stringContaining('(need 360.0 GiB for resource profile small (its 320 GiB disk + a 40 GiB OVA))') });
    }
  });

  it('a profile smaller than two images keeps the two-image estimate (the demo appliance)', async () => {
    const app = await loadAppliance(join(repoRoot, 'packer/demo-lab'));
    const o = localPreflightOptions({ appliance: app, resources: chooseResources(app), outDir: dir });
    expect(o.requiredDiskBytes).toBe(2 * app.build.expectedImageGiB * 2 ** 30);
    expect(o.diskBasis).toBeUndefined();
  });
});

describe('the registry credential reaches Packer in the environment only', () => {
  const hedgehog = join(repoRoot, 'packer/hedgehog-lab');
  it('a USER:TOKEN credential is kept for the PKR_VAR_registry_auth environment variable', () => {
    const o = readPackerBuildOptions(inputsFrom({ appliance: hedgehog, version: '1.0.0', 'registry-credential': 'attendee:ghp_secret123' }));
    expect(o.registryCredential).toBe('attendee:ghp_secret123');
    expect(Object.values(o.vars)).not.toContain('attendee:ghp_secret123');
  });
  it('anything else is refused with one line that does not repeat the secret', () => {
    let err: unknown;
    try {
      readPackerBuildOptions(inputsFrom({ appliance: hedgehog, version: '1.0.0', 'registry-credential': 'ghp_only-a-token' }));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InputError);
    expect((err as Error).message).toBe('registry-credential: is not USER:TOKEN (give the registry user name and token separated by a colon)');
    expect((err as Error).message).not.toContain('ghp_only');
  });
});
