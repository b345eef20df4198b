/**
 * Builds small OVAs for tests: a real tar (tar-stream) holding an OVF descriptor and a real VMDK made by
 * qemu-img, with options to break them the ways a user's file can be broken.
 */
import { execFileSync } from 'node:child_process';
import { createWriteStream, readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { pack } from 'tar-stream';

export interface OvaFixtureOptions {
  /** ProductSection properties (class labforge); omit `buildType` to leave it out. */
  properties?: Record<string, string>;
  /** Put the disk before the descriptor (invalid per OVF). */
  diskFirst?: boolean;
  /** Leave the descriptor out. */
  noOvf?: boolean;
  /** The descriptor text, instead of a generated one. */
  ovfText?: string;
}

export function ovfWithProperties(properties: Record<string, string>): string {
  const props = Object.entries(properties)
    .map(([k, v]) => `      <Property ovf:key="${k}" ovf:type="string" ovf:value="${v}"/>`)
    .join('\n');
  return `<?xml version="1.0" encoding="UTF-8"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1">
  <References><File ovf:href="disk1.vmdk" ovf:id="file1"/></References>
  <VirtualSystem ovf:id="fixture">
    <Info>test fixture</Info>
    <ProductSection ovf:class="labforge">
      <Info>labforge build</Info>
      <Product>hedgehog-lab</Product>
${props}
    </ProductSection>
  </VirtualSystem>
</Envelope>
`;
}

/** Writes an OVA to `path` and returns it. */
export async function writeOvaFixture(path: string, opts: OvaFixtureOptions = {}): Promise<string> {
  const work = mkdtempSync(join(tmpdir(), 'labforge-ova-fixture-'));
  try {
    const vmdk = join(work, 'disk1.vmdk');
    execFileSync('qemu-img', ['create', '-q', '-f', 'vmdk', '-o', 'subformat=streamOptimized', vmdk, '64M']);
    const disk = readFileSync(vmdk);
    const ovf = Buffer.from(opts.ovfText ?? ovfWithProperties(opts.properties ?? { buildType: 'standard', version: '1.0.0' }));
    const tar = pack();
    const out = pipeline(tar, createWriteStream(path));
    const entries: [string, Buffer][] = [];
    if (!opts.noOvf) entries.push(['hedgehog-lab.ovf', ovf]);
    entries.push(['disk1.vmdk', disk]);
    if (opts.diskFirst) entries.reverse();
    for (const [name, body] of entries) tar.entry({ name, size: body.length }, body);
    tar.finalize();
    await out;
    return path;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
