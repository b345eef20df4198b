import { describe, expect, it, beforeAll, afterAll } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Spec, Validation } from '@cyclonedx/cyclonedx-library';
import { InputError, inputsFrom } from '../../actions/lib/inputs.js';
import { readUploadOptions } from '../../actions/lib/upload-options.js';
import { readWarmOptions } from '../../actions/lib/vlab-warm.js';
import { buildSbom, debPurl, describeSbomFile, parseInventory, readInventory, SbomInventoryError, sbomFromInventoryFile, validateSbom, type SbomInventory, type SbomSubject } from '../../actions/lib/sbom.js';

const FIXTURE = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'sbom', 'inventory.json');
const SUBJECT: SbomSubject = { appliance: 'demo-lab', buildType: 'standard', version: '1.2.3', buildDate: '2026-11-30T12:34:56Z', gitSha: '0123456789abcdef0123456789abcdef01234567' };

/** The library's own validator, used directly: the same one the product uses where the package is installed. */
const officialValidator = new Validation.JsonStrictValidator(Spec.Version.v1dot6);

interface CdxComponent {
  'bom-ref': string;
  type: string;
  name: string;
  group?: string;
  version?: string;
  purl?: string;
  hashes?: { alg: string; content: string }[];
  properties?: { name: string; value: string }[];
}
interface CdxDoc {
  bomFormat: string;
  specVersion: string;
  serialNumber: string;
  version: number;
  metadata: { timestamp: string; component: CdxComponent; tools: { components: CdxComponent[] } };
  components: CdxComponent[];
}

let inventory: SbomInventory;
let dir: string;
beforeAll(async () => {
  inventory = await readInventory(FIXTURE);
  dir = await mkdtemp(join(tmpdir(), 'labforge-sbom-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('the appliance SBOM (CycloneDX 1.6)', () => {
  it('made from a guest inventory, validates against the CycloneDX 1.6 schema with the library validator', async () => {
    const { json, components } = buildSbom(inventory, SUBJECT);
    expect(await officialValidator.validate(json)).toBeNull();
    expect(await validateSbom(json)).toEqual({ validated: true });
    const doc = JSON.parse(json) as CdxDoc;
    expect(doc.bomFormat).toBe('CycloneDX');
    expect(doc.specVersion).toBe('1.6');
    expect(doc.serialNumber).toMatch(/^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(doc.metadata.timestamp).toBe('2026-11-30T12:34:56.000Z');
    expect(doc.metadata.component).toMatchObject({ type: 'operating-system', name: 'demo-lab', version: '1.2.3', 'bom-ref': 'demo-lab-standard@1.2.3' });
    expect(doc.metadata.component.properties).toContainEqual({ name: 'labforge:buildType', value: 'standard' });
    expect(doc.metadata.tools.components[0]).toMatchObject({ name: 'labforge', version: SUBJECT.gitSha });
    // 10 packages + the OS + the orchestrator + 2 drivers + hhfab
    expect(inventory.packages).toHaveLength(10);
    expect(components).toBe(15);
    expect(doc.components).toHaveLength(15);
  });

  it('gives every dpkg package a deb purl with arch, distro and its source package', () => {
    const doc = JSON.parse(buildSbom(inventory, SUBJECT).json) as CdxDoc;
    const byName = new Map(doc.components.map((c) => [c.name, c]));
    expect(byName.get('openssh-server')).toMatchObject({
      type: 'library',
      version: '1:9.2p1-2+deb12u10',
      purl: 'pkg:deb/debian/openssh-server@1:9.2p1-2+deb12u10?arch=amd64&distro=debian-12&upstream=openssh',
    });
    expect(byName.get('cloud-init')!.purl).toBe('pkg:deb/debian/cloud-init@22.4.2-1+deb12u3?arch=all&distro=debian-12');
    expect(byName.get('bash')!.purl).toBe('pkg:deb/debian/bash@5.2.15-2+b8?arch=amd64&distro=debian-12&upstream=bash%405.2.15-2');
    expect(byName.get('libc6')!.properties).toEqual(expect.arrayContaining([{ name: 'labforge:dpkg:source', value: 'glibc' }]));
    const debs = doc.components.filter((c) => c.purl?.startsWith('pkg:deb/'));
    expect(debs.map((c) => c.name).sort()).toEqual(inventory.packages.map((p) => p.name).sort());
    for (const c of debs) expect(c['bom-ref']).toBe(c.purl);
    expect(byName.get('debian')).toMatchObject({ type: 'operating-system', version: '12' });
  });

  it("lists labforge's orchestrator and drivers with their hashes, and the lab's recorded version", () => {
    const doc = JSON.parse(buildSbom(inventory, SUBJECT).json) as CdxDoc;
    const byName = new Map(doc.components.map((c) => [c.name, c]));
    expect(byName.get('hedgehog-lab')).toMatchObject({ type: 'application', group: 'labforge', version: SUBJECT.gitSha, hashes: [{ alg: 'SHA-256', content: 'a'.repeat(64) }] });
    expect(byName.get('hedgehog-lab-driver-test-lab')!.properties).toContainEqual({ name: 'labforge:driver:configured', value: 'true' });
    expect(byName.get('hedgehog-lab-driver-hedgehog-vlab')!.properties).toContainEqual({ name: 'labforge:driver:configured', value: 'false' });
    expect(byName.get('hhfab')).toMatchObject({ version: 'v0.41.3', hashes: [{ alg: 'SHA-256', content: 'd'.repeat(64) }] });
  });

  it('names an Ubuntu package pkg:deb/ubuntu/… with the Ubuntu release', () => {
    const os = { id: 'ubuntu', versionId: '24.04', versionCodename: 'noble', prettyName: 'Ubuntu 24.04.1 LTS' };
    expect(debPurl(os, { name: 'libc6', version: '2.39-0ubuntu8.3', architecture: 'amd64', sourceName: 'glibc', sourceVersion: '2.39-0ubuntu8.3' })).toBe('pkg:deb/ubuntu/libc6@2.39-0ubuntu8.3?arch=amd64&distro=ubuntu-24.04&upstream=glibc');
  });

  it('the same validator rejects a broken document (so the schema test can fail)', async () => {
    const doc = JSON.parse(buildSbom(inventory, SUBJECT).json) as CdxDoc & Record<string, unknown>;
    const broken = { ...doc, components: doc.components.map((c, i) => (i === 0 ? { ...c, type: 'virtual-machine' } : c)) };
    expect(await officialValidator.validate(JSON.stringify(broken))).not.toBeNull();
    await expect(validateSbom(JSON.stringify(broken))).rejects.toThrow(/does not validate against the CycloneDX 1.6 schema: \/components\/0\/type/);
    const noSerial = { ...doc, serialNumber: 'not-a-urn' };
    await expect(validateSbom(JSON.stringify(noSerial))).rejects.toThrow(/\/serialNumber/);
  });

  it('writes <base>.cdx.json and reports size, SHA-256 and component count as published', async () => {
    const out = join(dir, 'demo-lab-standard-1.2.3.cdx.json');
    const file = await sbomFromInventoryFile(FIXTURE, SUBJECT, out);
    expect(file).toMatchObject({ path: out, components: 15, format: 'CycloneDX 1.6', validation: { validated: true } });
    const bytes = await readFile(out);
    expect(file.size).toBe(bytes.length);
    expect(await describeSbomFile(out)).toEqual({ format: 'CycloneDX 1.6', size: file.size, sha256: file.sha256, components: 15 });
    expect(await officialValidator.validate(bytes.toString())).toBeNull();
    // every build gets its own serial number
    expect(JSON.parse(buildSbom(inventory, SUBJECT).json).serialNumber).not.toBe(JSON.parse(bytes.toString()).serialNumber);
  });
});

describe('a malformed inventory', () => {
  const base = (): Record<string, unknown> => JSON.parse(readFileSync(FIXTURE, 'utf8')) as Record<string, unknown>;
  it.each([
    ['not JSON', '{"inventoryVersion": 1,', /package inventory guest\.json: not JSON \(/],
    ['no packages', JSON.stringify({ ...base(), packages: [] }), /package inventory guest\.json: packages must NOT have fewer than 1 items \(the seal's packer\/guest\/sbom-inventory\.sh writes it/],
    ['a package without a version', JSON.stringify({ ...base(), packages: [{ name: 'bash', architecture: 'amd64', sourceName: 'bash', sourceVersion: '5' }] }), /packages\.0: version is missing/],
    ['a version with a space', JSON.stringify({ ...base(), packages: [{ name: 'bash', version: '5 2', architecture: 'amd64', sourceName: 'bash', sourceVersion: '5' }] }), /packages\.0\.version must match pattern/],
    ['another inventory version', JSON.stringify({ ...base(), inventoryVersion: 2 }), /inventoryVersion: must be 1/],
    ['an unknown field', JSON.stringify({ ...base(), extra: true }), /\(top level\): extra is not a known field/],
  ])('is one clear error: %s', (_name, text, message) => {
    expect(() => parseInventory(text, 'guest.json')).toThrow(SbomInventoryError);
    expect(() => parseInventory(text, 'guest.json')).toThrow(message);
  });

  it('a missing inventory file says where the seal writes it', async () => {
    await expect(readInventory(join(dir, 'absent.json'))).rejects.toThrow(/absent\.json: cannot be read \(ENOENT; the seal writes it to \/var\/lib\/hedgehog-lab\/sbom-inventory\.json in the guest\)/);
  });

  it('a package listed twice is refused', async () => {
    const twice = { ...base(), packages: [inventory.packages[0], inventory.packages[0]] };
    await writeFile(join(dir, 'twice.json'), JSON.stringify(twice));
    await expect(sbomFromInventoryFile(join(dir, 'twice.json'), SUBJECT, join(dir, 'x.cdx.json'))).rejects.toThrow(/lists bash 5\.2\.15-2\+b8 \(amd64\) twice/);
  });
});

describe('the sbom inputs', () => {
  it('vlab-warm writes it beside the pre-warmed image by default; none turns it off; a wrong name is one clear error', async () => {
    const image = join(dir, 'standard.qcow2');
    await writeFile(image, 'x');
    const base = { image, output: join(dir, 'demo-lab-prewarmed-1.2.3.qcow2'), 'cloud-init-seed': 'true' };
    expect(readWarmOptions(inputsFrom(base)).sbom).toEqual({ out: join(dir, 'demo-lab-prewarmed-1.2.3.cdx.json'), appliance: 'hedgehog-lab' });
    expect(readWarmOptions(inputsFrom({ ...base, sbom: 'none' })).sbom).toBeUndefined();
    expect(() => readWarmOptions(inputsFrom({ ...base, sbom: join(dir, 'x.json') }))).toThrow(/^sbom: '.+x\.json' does not end in \.cdx\.json \(give the path of the CycloneDX JSON SBOM to write/);
    expect(() => readWarmOptions(inputsFrom({ ...base, sbom: join(dir, 'missing', 'x.cdx.json') }))).toThrow(/^sbom: directory .+missing does not exist \(create it first/);
  });

  it('upload-artifact takes a .json path or none', () => {
    const base = { path: 'x.ova', destination: 'file:///tmp/labs' };
    expect(readUploadOptions(inputsFrom(base)).sbom).toBeUndefined();
    expect(readUploadOptions(inputsFrom({ ...base, sbom: 'none' })).sbom).toBe(false);
    expect(readUploadOptions(inputsFrom({ ...base, sbom: 'out/a.cdx.json' })).sbom).toBe('out/a.cdx.json');
    expect(() => readUploadOptions(inputsFrom({ ...base, sbom: 'out/a.spdx' }))).toThrow(InputError);
  });
});
