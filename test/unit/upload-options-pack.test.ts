/**
 * upload-artifact's inputs for publishing an OVA while it is packed (readUploadInputs): what a valid set
 * reads as, and that without image the upload reads its inputs as before. Bad values are the bundle's
 * table in test/integration/bad-input-upload-artifact.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { InputError, inputsFrom } from '../../actions/lib/inputs.js';
import { readUploadInputs } from '../../actions/lib/upload-pack-options.js';

const tmp = mkdtempSync(join(tmpdir(), 'labforge-upload-pack-options-'));
const demoLab = resolve('packer', 'demo-lab');
const image = join(tmp, 'disk.qcow2');
const valid = { image, 'appliance-dir': demoLab, path: join(tmp, 'demo-lab-standard-1.0.0.ova'), destination: `file://${tmp}`, version: '1.0.0', 'build-type': 'standard' };
beforeAll(() => {
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', image, '16M']);
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('upload inputs with image', () => {
  it("reads the packing: the image, the OVA to write, the appliance and its default profile", async () => {
    const { upload, pack } = await readUploadInputs(inputsFrom(valid));
    expect(upload).toMatchObject({ version: '1.0.0', buildType: 'standard', overwrite: false, path: [valid.path] });
    expect(pack).toMatchObject({ image, out: valid.path, appliance: { name: 'demo-lab', os: { cimId: 96 } }, resources: { name: 'tiny', cpus: 2, memoryMiB: 1024 } });
  });

  it('resolves a relative path against the working directory', async () => {
    const cwd = process.cwd();
    process.chdir(tmp);
    try {
      const { pack } = await readUploadInputs(inputsFrom({ ...valid, path: 'rel.ova' }));
      expect(pack?.out).toBe(join(tmp, 'rel.ova'));
    } finally {
      process.chdir(cwd);
    }
  });

  it('replaces an existing OVA at path only with overwrite', async () => {
    const existing = join(tmp, 'existing.ova');
    writeFileSync(existing, 'old');
    await expect(readUploadInputs(inputsFrom({ ...valid, path: existing }))).rejects.toThrow(new InputError('path', `${existing} already exists`, 'with image, path is the OVA to write: remove the old file, choose another path, or set overwrite: true (which also replaces a published release)'));
    expect((await readUploadInputs(inputsFrom({ ...valid, path: existing, overwrite: 'true' }))).pack?.out).toBe(existing);
  });

  it('accepts the appliance input when it names the appliance of appliance-dir', async () => {
    expect((await readUploadInputs(inputsFrom(valid), 'demo-lab')).pack?.appliance.name).toBe('demo-lab');
  });

  it('refuses the image as the OVA to write', async () => {
    const ovaImage = join(tmp, 'disk.ova');
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', ovaImage, '16M']);
    await expect(readUploadInputs(inputsFrom({ ...valid, image: ovaImage, path: ovaImage, overwrite: 'true' }))).rejects.toThrow(/^path: .*disk\.ova is the image itself/);
  });
});

describe('upload inputs without image', () => {
  it('read as before, with no packing', async () => {
    const r = await readUploadInputs(inputsFrom({ path: 'out/*.ova', destination: 'gs://my-labs/x' }));
    expect(r.pack).toBeUndefined();
    expect(r.upload.path).toEqual(['out/*.ova']);
  });
});
