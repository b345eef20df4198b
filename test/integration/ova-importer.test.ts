/**
 * A real importer reads labforge's OVAs: virt-v2v (libguestfs' converter of VMware/VirtualBox appliances to
 * KVM) with `-i ova … --print-source` parses the tar, verifies every file against the manifest's SHA-256, reads
 * the OVF descriptor (name, memory, vCPUs, firmware, disks, NICs) and stops before any conversion (no
 * libguestfs appliance is started). All three layouts pack-ova can write are accepted: the stream writer with
 * the manifest second (the default) and at the end (DSP0243 1.1+), and qemu-img's writer. A changed byte in the
 * disk or the descriptor is refused by the same importer, so the test can fail.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { packOva, type PackOvaOptions } from '../../actions/lib/ova-pack.js';
import { GENERIC_LINUX_64 } from '../../actions/lib/ovf-descriptor.js';
import { makeDataImage } from '../support/disk-image.js';
import { entryRange } from '../support/ova-entries.js';
import { importerReads } from '../support/ova-importer.js';

const MiB = 1024 * 1024;
const NAME = 'demo-lab-standard-1.0.0';
let dir: string;
let image: string;

const base = (): PackOvaOptions => ({ image, out: '', appliance: 'demo-lab', buildType: 'standard', version: '1.0.0', os: GENERIC_LINUX_64, cpus: 3, memoryMiB: 1536, buildDate: new Date('2026-01-01T00:00:00Z'), gitSha: 'importer' });

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'labforge-ova-importer-'));
  image = join(dir, 'disk.qcow2');
  makeDataImage(image, { virtualBytes: 48 * MiB, randomMiB: 4, textLines: 30000 });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('virt-v2v imports the OVAs pack-ova writes', () => {
  it.each([
    ['the stream writer, manifest second (the default)', {}],
    ['the stream writer, manifest at the end', { manifestPosition: 'end' }],
    ["qemu-img's writer", { vmdkWriter: 'qemu-img' }],
  ] as const)('%s: manifest verified, descriptor read', async (_label, extra) => {
    const out = join(mkdtempSync(join(dir, 'layout-')), `${NAME}.ova`);
    await packOva({ ...base(), ...extra, out });
    const r = importerReads(out);
    expect(r.text).not.toMatch(/error/i);
    expect(r.status).toBe(0);
    expect(r.facts).toMatchObject({ 'source name': NAME, memory: `${1536 * MiB} (bytes)`, 'nr vCPUs': '3', firmware: 'bios' });
    expect(r.disks).toEqual(['\t0 [scsi]']);
  }, 120_000);

  describe('and refuses one whose bytes no longer match its manifest', () => {
    let good: Buffer;
    beforeAll(async () => {
      const out = join(dir, `${NAME}.ova`);
      await packOva({ ...base(), out });
      good = readFileSync(out);
    }, 120_000);

    // The disk: a byte in the middle of its grains. The descriptor: the case of one letter of its first <Info>
    // text, so that it stays well-formed XML and only the manifest can tell.
    it.each([
      ['a byte of the disk', `${NAME}-disk1.vmdk`, (_data: Buffer, size: number) => Math.floor(size / 2)],
      ['a letter of the descriptor', `${NAME}.ovf`, (data: Buffer) => data.indexOf('<Info>') + '<Info>'.length],
    ])('%s', (_label, entry, where) => {
      const { offset, size } = entryRange(join(dir, `${NAME}.ova`), entry);
      const at = offset + where(good.subarray(offset, offset + size), size);
      expect(at).toBeGreaterThanOrEqual(offset + 6);
      const bad = Buffer.from(good);
      bad[at]! ^= 0x20;
      const file = join(dir, `changed-${entry}.ova`);
      writeFileSync(file, bad);
      const r = importerReads(file);
      expect(r.status).not.toBe(0);
      expect(r.text).toContain(`corrupt OVA: checksum of disk ${entry} does not match manifest`);
    }, 120_000);
  });
});
