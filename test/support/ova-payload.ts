/**
 * An OVA of any size for upload tests: a real tar (tar-stream) whose first member is an OVF descriptor with
 * the given labforge properties, followed by a disk member holding `payload` — big enough to span many
 * upload parts, without a qemu-img conversion.
 */
import { createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { pack } from 'tar-stream';
import { ovfWithProperties } from './ova-fixture.js';

/** Writes `path` as an OVA: `<name>.ovf` (the properties), then `disk1.vmdk` (the payload). Returns `path`. */
export async function writeOvaWithPayload(path: string, properties: Record<string, string>, payload: Buffer): Promise<string> {
  const tar = pack();
  const out = pipeline(tar, createWriteStream(path));
  const ovf = Buffer.from(ovfWithProperties(properties));
  tar.entry({ name: 'appliance.ovf', size: ovf.length }, ovf);
  tar.entry({ name: 'disk1.vmdk', size: payload.length }, payload);
  tar.finalize();
  await out;
  return path;
}
