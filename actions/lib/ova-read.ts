/**
 * Reads an OVA's OVF descriptor without reading its disks.
 *
 * An OVA is a tar whose first entry is the OVF descriptor (OVF 1.0, section 5.3). We stream the tar with
 * tar-stream, take that first entry and stop: a 100 GB appliance costs a few kilobytes of I/O.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { extract } from 'tar-stream';
import { XMLParser } from 'fast-xml-parser';
import { LEGACY_APPLIANCE } from './release-names.js';

/** An OVA that cannot be read, and why. `input` names what the caller should fix. */
export class OvaError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OvaError';
  }
}

/** The largest descriptor we accept; real ones are a few KiB. */
const MAX_OVF_BYTES = 4 * 1024 * 1024;

/** Returns the name and text of the OVA's OVF descriptor (its first tar entry). */
export async function readOvfDescriptor(ovaPath: string): Promise<{ name: string; xml: string }> {
  const info = await stat(ovaPath).catch(() => undefined);
  if (!info) throw new OvaError(`${ovaPath} does not exist`);
  if (!info.isFile()) throw new OvaError(`${ovaPath} is not a file`);

  const source = createReadStream(ovaPath);
  const tar = extract();
  return new Promise((resolve, reject) => {
    let settled = false;
    const finish = (err: Error | undefined, value?: { name: string; xml: string }) => {
      if (settled) return;
      settled = true;
      source.destroy();
      tar.destroy();
      if (err) reject(err);
      else resolve(value!);
    };
    tar.on('entry', (header, stream, next) => {
      if (!header.name.toLowerCase().endsWith('.ovf')) {
        stream.resume();
        finish(new OvaError(`${ovaPath} is not a valid OVA: its first entry is '${header.name}', but the OVF descriptor (*.ovf) must come first`));
        return;
      }
      if ((header.size ?? 0) > MAX_OVF_BYTES) {
        finish(new OvaError(`${ovaPath}: OVF descriptor '${header.name}' is ${header.size} bytes, more than any real descriptor`));
        return;
      }
      const chunks: Buffer[] = [];
      stream.on('data', (c: unknown) => chunks.push(c as Buffer));
      stream.on('end', () => finish(undefined, { name: header.name, xml: Buffer.concat(chunks).toString('utf8') }));
      stream.on('error', (e) => finish(e));
      void next;
    });
    tar.on('error', (e) => finish(new OvaError(`${ovaPath} is not a tar archive (${e.message})`)));
    tar.on('finish', () => finish(new OvaError(`${ovaPath} is not a valid OVA: it contains no OVF descriptor`)));
    source.on('error', (e) => finish(new OvaError(`cannot read ${ovaPath}: ${e.message}`)));
    source.pipe(tar);
  });
}

type XmlNode = Record<string, unknown>;
const asArray = <T>(v: T | T[] | undefined): T[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

/**
 * Returns the properties of an OVF descriptor's ProductSection of the given class (default `labforge`),
 * as key → value.
 */
export function readProductProperties(ovfXml: string, productClass = 'labforge'): Record<string, string> {
  const parser = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '@_', removeNSPrefix: true, parseAttributeValue: false });
  let doc: XmlNode;
  try {
    doc = parser.parse(ovfXml, true) as XmlNode;
  } catch (e) {
    throw new OvaError(`the OVF descriptor is not well-formed XML (${(e as Error).message})`);
  }
  const envelope = doc['Envelope'] as XmlNode | undefined;
  if (!envelope) throw new OvaError('the OVF descriptor has no Envelope element');
  const systems = [...asArray(envelope['VirtualSystem'] as XmlNode | XmlNode[]), ...asArray((envelope['VirtualSystemCollection'] as XmlNode | undefined)?.['VirtualSystem'] as XmlNode | XmlNode[])];
  const props: Record<string, string> = {};
  for (const system of systems) {
    for (const section of asArray(system['ProductSection'] as XmlNode | XmlNode[])) {
      if ((section['@_class'] ?? '') !== productClass) continue;
      for (const p of asArray(section['Property'] as XmlNode | XmlNode[])) {
        const key = p['@_key'];
        const value = p['@_value'];
        if (typeof key === 'string') props[key] = typeof value === 'string' ? value : '';
      }
    }
  }
  return props;
}

/**
 * Reads the labforge ProductSection properties (`appliance`, `buildType`, `version`, `buildDate`, `gitSha`)
 * of an OVA. An OVA packed before OVAs named their appliance has a labforge section without `appliance`:
 * it reads as `hedgehog-lab`, the only appliance there was. An OVA without a labforge section gives `{}`.
 */
export async function readOvaProperties(ovaPath: string): Promise<Record<string, string>> {
  const { xml } = await readOvfDescriptor(ovaPath);
  const props = readProductProperties(xml);
  if (Object.keys(props).length > 0 && !props['appliance']) props['appliance'] = LEGACY_APPLIANCE;
  return props;
}
