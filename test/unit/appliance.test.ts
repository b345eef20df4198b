/* eslint-disable @typescript-eslint/no-explicit-any -- manifests are edited as loose YAML documents here */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parse, stringify } from 'yaml';
import { checkAccelerator, chooseResources, labSettingsLines, loadAppliance } from '../../actions/lib/appliance.js';
import { InputError } from '../../actions/lib/inputs.js';
import { catchInputError } from '../support/input-error.js';

const repo = resolve(import.meta.dirname ?? '.', '../..');
const demoText = readFileSync(join(repo, 'packer/demo-lab/appliance.yml'), 'utf8');

let work: string;
beforeEach(() => {
  work = mkdtempSync(join(tmpdir(), 'labforge-appliance-'));
  writeFileSync(join(work, 'build-base.sh'), '#!/bin/sh\n');
  writeFileSync(join(work, 'demo.pkr.hcl'), '');
});
afterEach(() => rmSync(work, { recursive: true, force: true }));

/** Writes a manifest made from the demo one with `change` applied; returns the directory. */
function manifest(change: (m: Record<string, any>) => void): string {
  const m = parse(demoText) as Record<string, any>;
  change(m);
  writeFileSync(join(work, 'appliance.yml'), stringify(m));
  return work;
}

async function loadError(dir: string): Promise<InputError> {
  try {
    await loadAppliance(dir);
  } catch (e) {
    if (e instanceof InputError) return e;
    throw e;
  }
  throw new Error('the manifest was accepted');
}

describe('appliance manifests of this repository', () => {
  test('the demo appliance loads with its OS, profile, seed and base image', async () => {
    const app = await loadAppliance(join(repo, 'packer/demo-lab'));
    expect(app.name).toBe('demo-lab');
    expect(app.os).toEqual({ cimId: 96, vmwareOsType: 'debian11_64Guest', description: 'Debian GNU/Linux 12 (64-bit)' });
    expect(app.template).toBe(join(repo, 'packer/demo-lab'));
    expect(app.build.seed.format).toBe('nocloud');
    expect(app.build.baseImage?.command[0]).toBe(join(repo, 'packer/demo-lab/build-base.sh'));
    expect(app.login.user).not.toBe(app.build.user);
    const res = chooseResources(app);
    expect(res).toMatchObject({ name: 'tiny', cpus: 2, memoryMiB: 1024, diskGiB: 3, nestedVirtualization: false });
    expect(labSettingsLines(app, res)).toBe('TEST_LAB_SWITCHES=8\nTEST_LAB_DISK_MIB=40\nREADY_INTERVAL=1');
  });

  test('the Hedgehog appliance says Ubuntu, needs KVM and pins its ISO by a literal checksum', async () => {
    const app = await loadAppliance(join(repo, 'packer/hedgehog-lab'));
    expect(app.os.cimId).toBe(94);
    expect(app.os.vmwareOsType).toBe('ubuntu64Guest');
    expect(app.kvm).toBe('required');
    expect(app.build.seed.format).toBe('autoinstall');
    expect(app.build.variables['iso_checksum']).toBe('sha256:c3514bf0056180d09376462a7a1b4f213c1d6e8ea67fae5c25099c6fd3d8274b');
    expect(chooseResources(app).nestedVirtualization).toBe(true);
  });
});

describe('the accelerator an appliance needs', () => {
  test('an appliance that requires KVM is refused under TCG for a build and a warm; one that prefers it is not', async () => {
    const hedgehog = await loadAppliance(join(repo, 'packer/hedgehog-lab'));
    expect(catchInputError(() => checkAccelerator(hedgehog, 'tcg', 'warm')).message).toBe(
      'accelerator: tcg cannot warm hedgehog-lab: its manifest says kvm: required (the lab runs VMs of its own) (warm it on a KVM runner with accelerator kvm)',
    );
    expect(() => checkAccelerator(hedgehog, 'kvm', 'build')).not.toThrow();
    const demo = await loadAppliance(join(repo, 'packer/demo-lab'));
    expect(() => checkAccelerator(demo, 'tcg', 'build')).not.toThrow();
  });
});

describe('resource profiles', () => {
  test('inputs override a profile and are recorded as overridden', async () => {
    const app = await loadAppliance(join(repo, 'packer/demo-lab'));
    const res = chooseResources(app, { cpus: 4, memoryMiB: 2048 });
    expect(res).toMatchObject({ cpus: 4, memoryMiB: 2048, diskGiB: 3, overridden: ['cpus', 'memory-mib'] });
  });

  test('an unknown profile names the ones there are', async () => {
    const app = await loadAppliance(join(repo, 'packer/demo-lab'));
    const e = catchInputError(() => chooseResources(app, { profile: 'huge' }));
    expect(e.message).toBe("profile: 'huge' is not a resource profile of demo-lab (use one of: tiny)");
  });

  test('an override below the minimum is refused, naming the input and the minimum', async () => {
    const app = await loadAppliance(join(repo, 'packer/demo-lab'));
    const e = catchInputError(() => chooseResources(app, { memoryMiB: 512 }));
    expect(e.input).toBe('memory-mib');
    expect(e.message).toMatch(/^memory-mib: 512 is below the minimum 768 of demo-lab \(.*resources\.minimum\) \(use at least 768\)$/);
  });

  test('a new profile needs no schema change', async () => {
    const dir = manifest((m) => {
      m.template = 'demo.pkr.hcl';
      m.resources.profiles.big = { description: 'more', cpus: 8, 'memory-mib': 8192, 'disk-gib': 20, 'nested-virtualization': true, 'lab-settings': { TEST_LAB_SWITCHES: 16 } };
    });
    const app = await loadAppliance(dir);
    const big = chooseResources(app, { profile: 'big' });
    expect(labSettingsLines(app, big)).toContain('TEST_LAB_SWITCHES=16');
    expect(labSettingsLines(app, big)).not.toContain('TEST_LAB_SWITCHES=8');
  });
});

describe('bad manifests get one line naming the file and the field', () => {
  const cases: [string, (m: Record<string, any>) => void, RegExp][] = [
    ['a missing field', (m) => delete m.os, /appliance\.yml: os is missing \(add it/],
    ['a missing nested field', (m) => delete m.lab.commands.ready, /appliance\.yml: lab\.commands\.ready is missing/],
    ['an unknown field', (m) => (m.colour = 'blue'), /appliance\.yml: colour is not a known field \(remove it or fix its spelling/],
    ['an unknown nested field', (m) => (m.warm['ssh-timeout'] = 3), /appliance\.yml: warm\.ssh-timeout is not a known field/],
    ['a name that cannot be part of a file name', (m) => (m.name = 'Demo Lab'), /appliance\.yml: name does not match/],
    ['an OS id the OVF cannot express', (m) => (m.os['cim-os-type'] = 4000), /appliance\.yml: os\.cim-os-type must be <= 115/],
    ['a VMware os type that is not one', (m) => (m.os['vmware-os-type'] = 'debian'), /appliance\.yml: os\.vmware-os-type does not match/],
    ['a seed format labforge does not render', (m) => (m.build.seed.format = 'ignition'), /appliance\.yml: build\.seed\.format must be one of nocloud, autoinstall/],
    ['a kvm value that is neither', (m) => (m.kvm = 'maybe'), /appliance\.yml: kvm must be one of required, preferred/],
    ['a default profile that does not exist', (m) => (m.resources.default = 'huge'), /appliance\.yml: resources\.default names 'huge', which is not a profile \(use one of: tiny\)/],
    ['a profile below the minimum', (m) => (m.resources.profiles.tiny['memory-mib'] = 512), /appliance\.yml: resources\.profiles\.tiny\.memory-mib is 512, below the minimum 768/],
    ['a template that does not exist', (m) => (m.template = 'nope.pkr.hcl'), /appliance\.yml: template names nope\.pkr\.hcl, which does not exist/],
    ['a base-image command that does not exist', (m) => (m.build['base-image'].command = ['missing.sh']), /appliance\.yml: build\.base-image\.command names missing\.sh, which does not exist/],
    ['a login user that is the build user', (m) => (m.login.user = m.build.user), /appliance\.yml: login\.user is the build user 'labforge'/],
    ['a wrong schema version', (m) => (m.schema = 2), /appliance\.yml: schema must be 1/],
    ['a command with a newline', (m) => (m.lab.commands.init = 'a\nb'), /appliance\.yml: lab\.commands\.init does not match/],
    ['a memory size that is not a number', (m) => (m.resources.profiles.tiny['memory-mib'] = '1G'), /appliance\.yml: resources\.profiles\.tiny\.memory-mib must be integer/],
  ];
  test.each(cases)('%s', async (_name, change, expected) => {
    const e = await loadError(
      manifest((m) => {
        m.template = 'demo.pkr.hcl';
        change(m);
      }),
    );
    expect(e.input).toBe('appliance');
    expect(e.message).toMatch(expected);
    expect(e.message.split('\n')).toHaveLength(1);
  });

  test('a directory without appliance.yml', async () => {
    const empty = join(work, 'empty');
    mkdirSync(empty);
    expect((await loadError(empty)).message).toMatch(/^appliance: .*empty\/appliance\.yml does not exist \(give an appliance directory holding appliance\.yml/);
  });

  test('YAML that does not parse names the line', async () => {
    writeFileSync(join(work, 'appliance.yml'), 'name: demo\nos: [unclosed\n');
    expect((await loadError(work)).message).toMatch(/appliance\.yml is not valid YAML at line \d/);
  });
});
