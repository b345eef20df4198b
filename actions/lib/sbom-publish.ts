/**
 * Publishing an appliance's SBOM beside its OVA (upload-artifact, `labforge upload`, the pipeline): which file,
 * and the facts the catalog and the metadata record (format, size, SHA-256, component count). Reads the JSON
 * only; making and validating the SBOM is sbom.ts's (so the upload does not carry the CycloneDX library).
 */
import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { printable } from './escape.js';
import { InputError } from './inputs.js';
import type { SbomReference } from './release-catalog.js';
import type { SourceIdentity } from './artifact-store.js';
import { pinSource } from './upload-hashing.js';

/** The SBOM's file name suffix beside the OVA: `<appliance>-<build-type>-<version>.cdx.json`. */
export const SBOM_SUFFIX = '.cdx.json';

/** A written SBOM's facts for publishing; throws an Error saying what is wrong when it is no CycloneDX JSON. */
export async function describeSbomFile(path: string): Promise<Omit<SbomReference, 'key'>> {
  const bytes = await readFile(path);
  let doc: { bomFormat?: unknown; specVersion?: unknown; components?: unknown };
  try {
    doc = JSON.parse(bytes.toString('utf8')) as typeof doc;
  } catch {
    throw new Error(`${printable(path)} is not JSON (a CycloneDX JSON SBOM was expected)`);
  }
  if (doc === null || typeof doc !== 'object' || doc.bomFormat !== 'CycloneDX' || typeof doc.specVersion !== 'string' || !/^1\.\d+$/.test(doc.specVersion)) {
    throw new Error(`${printable(path)} is not a CycloneDX JSON document (no bomFormat CycloneDX with a specVersion)`);
  }
  return {
    format: `CycloneDX ${doc.specVersion}`,
    size: bytes.length,
    sha256: createHash('sha256').update(bytes).digest('hex'),
    components: Array.isArray(doc.components) ? doc.components.length : 0,
  };
}

/** The SBOM an upload publishes: its path, the pinned source and its facts. */
export interface SbomToPublish {
  path: string;
  source: SourceIdentity;
  facts: Omit<SbomReference, 'key'>;
}

/**
 * Which SBOM to publish with `primary` (the OVA): the one given, else `<base>.cdx.json` among the upload's
 * paths or beside the OVA; none with `false` or when there is none. Checked before anything is uploaded.
 */
export async function resolveSbomToPublish(given: string | false | undefined, primary: string, paths: string[]): Promise<SbomToPublish | undefined> {
  if (given === false) return undefined;
  const name = `${basename(primary).replace(/\.ova$/, '')}${SBOM_SUFFIX}`;
  let path: string | undefined;
  if (typeof given === 'string') {
    path = resolve(given);
    if (!(await stat(path).catch(() => undefined))?.isFile()) throw new InputError('sbom', `${printable(given)} does not exist or is not a file`, "give the SBOM the build wrote (packer-build's or vlab-warm's sbom output), none, or leave it empty");
  } else {
    path = paths.find((p) => basename(p) === name) ?? join(dirname(primary), name);
    if (!(await stat(path).catch(() => undefined))?.isFile()) return undefined;
  }
  const source = await pinSource(path);
  const facts = await describeSbomFile(path).catch((e: Error) => {
    throw new InputError('sbom', e.message, 'publish the .cdx.json that labforge made for this build, or set sbom to none');
  });
  return { path, source, facts };
}
