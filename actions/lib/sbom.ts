/**
 * The appliance SBOM: the guest's package inventory (written at seal time by packer/guest/sbom-inventory.sh,
 * fetched out of the guest by packer-build and vlab-warm) turned into a CycloneDX 1.6 JSON document with the
 * official `@cyclonedx/cyclonedx-library`, published beside the OVA as `<appliance>-<build-type>-<version>.cdx.json`.
 * Why CycloneDX, and how it is validated: docs/adr/006-appliance-sbom.md.
 *
 *   const inventory = await readInventory('image/sbom-inventory.json');
 *   const sbom = await writeSbom(inventory, { appliance: 'demo-lab', buildType: 'standard', version: '1.0.0',
 *     buildDate: '2026-11-30T12:00:00Z' }, 'out/demo-lab-standard-1.0.0.cdx.json');
 *
 * The document lists the appliance (metadata.component), its OS, every dpkg package with a
 * `pkg:deb/<os>/<name>@<version>?arch=…&distro=<os>-<version>` purl, labforge's orchestrator and drivers (with
 * the SHA-256 of the files in the image) and the lab's recorded versions.
 */
import { createHash, randomUUID } from 'node:crypto';
import { rename, rm, stat, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { Enums, Models, Serialize, Spec, Validation } from '@cyclonedx/cyclonedx-library';
import { PackageURL } from 'packageurl-js';
import { printable } from './escape.js';
import { INVENTORY_GUEST_PATH, parseInventory, readInventory, type SbomInventory } from './sbom-inventory.js';
import type { BuildType } from './release-names.js';

export { SbomInventoryError, parseInventory, readInventory, INVENTORY_GUEST_PATH, type SbomInventory } from './sbom-inventory.js';

/** What the published SBOM says it is (catalog, metadata, portal). */
export const SBOM_FORMAT = 'CycloneDX 1.6';
export { SBOM_SUFFIX, describeSbomFile } from './sbom-publish.js';

/** The appliance the SBOM describes. */
export interface SbomSubject {
  appliance: string;
  buildType: BuildType;
  version: string;
  /** The build date (ISO 8601): the SBOM's timestamp. */
  buildDate: string;
  /** labforge's commit, when known: the version of its orchestrator and drivers in the image. */
  gitSha?: string;
}

/** The SBOM could not be made or does not validate (not an input problem: the build's). */
export class SbomError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SbomError';
  }
}

/** A written SBOM file. */
export interface SbomFile {
  path: string;
  size: number;
  sha256: string;
  /** How many components it lists (packages, the OS, labforge's parts, lab tools). */
  components: number;
  format: string;
  /** Validated against the CycloneDX 1.6 JSON schema here, or why not (see {@link validateSbom}). */
  validation: SbomValidation;
}

export type SbomValidation = { validated: true } | { validated: false; reason: string };

const { ComponentType, HashAlgorithm } = Enums;

/** `pkg:deb/debian/libc6@2.36-9?arch=amd64&distro=debian-12&upstream=glibc` (upstream only when it differs). */
export function debPurl(os: SbomInventory['os'], p: SbomInventory['packages'][number]): string {
  const qualifiers: Record<string, string> = { arch: p.architecture, distro: os.versionId ? `${os.id}-${os.versionId}` : os.id };
  if (p.sourceName !== p.name || p.sourceVersion !== p.version) {
    qualifiers.upstream = p.sourceVersion !== p.version ? `${p.sourceName}@${p.sourceVersion}` : p.sourceName;
  }
  return new PackageURL('deb', os.id, p.name, p.version, qualifiers, undefined).toString();
}

/** The CycloneDX 1.6 JSON text of the appliance's SBOM (pretty-printed, components sorted). */
export function buildSbom(inventory: SbomInventory, subject: SbomSubject): { json: string; components: number } {
  const buildDate = new Date(subject.buildDate);
  if (Number.isNaN(buildDate.getTime())) throw new SbomError(`the build date '${subject.buildDate}' is not a date`);
  const { os } = inventory;
  const labforgeVersion = subject.gitSha || undefined;
  const prop = (name: string, value: string) => new Models.Property(name, value);

  const bom = new Models.Bom();
  bom.serialNumber = `urn:uuid:${randomUUID()}`;
  bom.metadata.timestamp = buildDate;
  bom.metadata.tools.components.add(new Models.Component(ComponentType.Application, 'labforge', { version: labforgeVersion, description: 'builds lab appliances; made this SBOM from the package inventory taken at seal time' }));
  bom.metadata.component = new Models.Component(ComponentType.OperatingSystem, subject.appliance, {
    bomRef: `${subject.appliance}-${subject.buildType}@${subject.version}`,
    version: subject.version,
    description: `${subject.appliance} lab appliance (${subject.buildType} build), an OVA built by labforge on ${os.prettyName || os.id}`,
    properties: new Models.PropertyRepository([
      prop('labforge:buildType', subject.buildType),
      prop('labforge:inventoryTakenAt', inventory.takenAt),
      ...(subject.gitSha ? [prop('labforge:gitSha', subject.gitSha)] : []),
    ]),
  });

  bom.components.add(new Models.Component(ComponentType.OperatingSystem, os.id, {
    bomRef: `os:${os.id}@${os.versionId}`,
    version: os.versionId || undefined,
    description: os.prettyName || undefined,
    properties: new Models.PropertyRepository(os.versionCodename ? [prop('labforge:os:codename', os.versionCodename)] : []),
  }));
  const refs = new Set<string>();
  for (const p of inventory.packages) {
    const purl = debPurl(os, p);
    if (refs.has(purl)) throw new SbomError(`the package inventory lists ${p.name} ${p.version} (${p.architecture}) twice`);
    refs.add(purl);
    bom.components.add(new Models.Component(ComponentType.Library, p.name, {
      bomRef: purl,
      version: p.version,
      purl,
      properties: new Models.PropertyRepository([prop('labforge:dpkg:architecture', p.architecture), prop('labforge:dpkg:source', p.sourceName), prop('labforge:dpkg:sourceVersion', p.sourceVersion)]),
    }));
  }

  const fileComponent = (name: string, description: string, file: { path: string; sha256: string }, extra: Models.Property[] = []) =>
    new Models.Component(ComponentType.Application, name, {
      bomRef: `labforge:${name}`,
      group: 'labforge',
      version: labforgeVersion,
      description,
      hashes: new Models.HashDictionary([[HashAlgorithm['SHA-256'], file.sha256]]),
      properties: new Models.PropertyRepository([prop('labforge:path', file.path), ...extra]),
    });
  const lf = inventory.labforge;
  if (lf.orchestrator) bom.components.add(fileComponent('hedgehog-lab', 'the guest orchestrator (initializes or resumes the lab at boot)', lf.orchestrator));
  for (const d of lf.drivers) {
    bom.components.add(fileComponent(`hedgehog-lab-driver-${d.name}`, `the ${d.name} lab driver of the orchestrator`, d, [prop('labforge:driver:configured', String(d.name === lf.driver))]));
  }
  const tools = new Map(inventory.lab.tools.map((t) => [t.name.toLowerCase(), t]));
  for (const [key, version] of Object.entries(inventory.lab.versions)) {
    const name = key.replace(/_VERSION$/, '').toLowerCase().replace(/_/g, '-');
    const tool = tools.get(name);
    tools.delete(name);
    bom.components.add(new Models.Component(ComponentType.Application, name, {
      bomRef: `lab:${name}`,
      version,
      description: `the lab's ${name} (version recorded as ${key} in /etc/hedgehog-lab/lab.conf)`,
      ...(tool ? { hashes: new Models.HashDictionary([[HashAlgorithm['SHA-256'], tool.sha256]]) } : {}),
      properties: new Models.PropertyRepository(tool ? [prop('labforge:path', tool.path)] : []),
    }));
  }
  for (const tool of tools.values()) {
    bom.components.add(new Models.Component(ComponentType.Application, tool.name, {
      bomRef: `lab:${tool.name}`,
      description: `the lab's ${tool.name} (no version recorded in /etc/hedgehog-lab/lab.conf)`,
      hashes: new Models.HashDictionary([[HashAlgorithm['SHA-256'], tool.sha256]]),
      properties: new Models.PropertyRepository([prop('labforge:path', tool.path)]),
    }));
  }

  const serializer = new Serialize.JsonSerializer(new Serialize.JSON.Normalize.Factory(Spec.Spec1dot6));
  return { json: `${serializer.serialize(bom, { sortLists: true, space: 2 })}\n`, components: bom.components.size };
}

type JsonValidatorClass = new (version: Spec.Version) => { validate(data: string): Promise<null | unknown> };

/**
 * Runs the library's CycloneDX 1.6 strict JSON validator. Bundled (the actions' and the CLI's dist/), the
 * library's schema files are not beside the code (it reads them from its own res/ at run time): then the copy
 * of the package that node_modules resolves from the bundle's place (a development checkout, CI) is used, and
 * without one, none (`undefined`).
 */
async function runValidator(json: string): Promise<{ errors: unknown } | undefined> {
  const version = Spec.Version.v1dot6;
  try {
    return { errors: await new Validation.JsonStrictValidator(version).validate(json) };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  let lib: { Validation: { JsonStrictValidator: JsonValidatorClass } };
  try {
    const load = createRequire(import.meta.url);
    lib = load(load.resolve('@cyclonedx/cyclonedx-library')) as typeof lib;
  } catch {
    return undefined;
  }
  return { errors: await new lib.Validation.JsonStrictValidator(version).validate(json) };
}

/**
 * Validates a CycloneDX 1.6 JSON text with the library's strict validator. Throws {@link SbomError} when it
 * does not validate; returns `{validated: false, reason}` when no validator is available here.
 */
export async function validateSbom(json: string): Promise<SbomValidation> {
  let result: { errors: unknown } | undefined;
  try {
    result = await runValidator(json);
  } catch (e) {
    const err = e as Error;
    if (err.name === 'MissingOptionalDependencyError') return { validated: false, reason: `the validator's optional dependencies are missing (${err.message})` };
    throw new SbomError(`the SBOM is not valid JSON: ${err.message}`);
  }
  if (!result) return { validated: false, reason: 'the CycloneDX schemas ship with the npm package @cyclonedx/cyclonedx-library, which is not installed beside this bundle (labforge validates its SBOMs in its tests)' };
  if (result.errors === null) return { validated: true };
  const first = (Array.isArray(result.errors) ? result.errors : [result.errors])[0] as { instancePath?: string; message?: string } | undefined;
  throw new SbomError(`the SBOM does not validate against the CycloneDX 1.6 schema: ${first?.instancePath || '(top level)'} ${first?.message ?? JSON.stringify(result.errors)}`);
}

/** Builds the SBOM, validates it (where possible) and writes it to `out` (atomically). */
export async function writeSbom(inventory: SbomInventory, subject: SbomSubject, out: string): Promise<SbomFile> {
  const { json, components } = buildSbom(inventory, subject);
  const validation = await validateSbom(json);
  const tmp = `${out}.tmp-${process.pid}`;
  try {
    await writeFile(tmp, json);
    await rename(tmp, out);
  } finally {
    await rm(tmp, { force: true });
  }
  const bytes = Buffer.from(json);
  return { path: out, size: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex'), components, format: SBOM_FORMAT, validation };
}

/** Reads the inventory file and writes the SBOM beside it or at `out`: the step packer-build and vlab-warm run. */
export async function sbomFromInventoryFile(inventoryFile: string, subject: SbomSubject, out: string): Promise<SbomFile> {
  return writeSbom(await readInventory(inventoryFile), subject, out);
}

/** One log line about a written SBOM. */
export function sbomLogLine(file: SbomFile): string {
  return `SBOM: ${file.path} (${file.format}, ${file.components} components, sha256 ${file.sha256}; ${file.validation.validated ? 'validated against the CycloneDX 1.6 JSON schema' : `not validated here: ${file.validation.reason}`})`;
}

/**
 * The build's SBOM step (packer-build): the inventory fetched out of the guest → `out`. No inventory
 * file (a template that does not fetch one) is no SBOM, said in the log; a malformed one is an error.
 */
export async function sbomForBuild(o: { inventory: string; out: string; subject: SbomSubject; log: (line: string) => void }): Promise<SbomFile | undefined> {
  if (!(await stat(o.inventory).catch(() => undefined))) {
    o.log(`SBOM: none (no package inventory ${o.inventory} was fetched out of the guest; an appliance template downloads ${INVENTORY_GUEST_PATH} after its seal)`);
    return undefined;
  }
  const file = await sbomFromInventoryFile(o.inventory, o.subject, o.out);
  o.log(sbomLogLine(file));
  return file;
}

/** What {@link sbomFromGuest} needs of an SSH session (ssh-remote.ts's RemoteSession). */
interface GuestExec {
  exec(command: string, options: { timeoutMs?: number; signal?: AbortSignal; keepChars?: number }): Promise<{ code: number | null; stdout: string; stderr: string }>;
}

/**
 * vlab-warm's SBOM step: reads the inventory the seal just took over the warm's SSH session (before the
 * shutdown) and writes the SBOM to `out`. An image without an inventory (sealed by an older seal) is no SBOM,
 * said in the log.
 */
export async function sbomFromGuest(session: GuestExec, o: { out: string; subject: SbomSubject; log: (line: string) => void; signal?: AbortSignal }): Promise<SbomFile | undefined> {
  const r = await session.exec(`if [ -f ${INVENTORY_GUEST_PATH} ]; then cat ${INVENTORY_GUEST_PATH}; else exit 3; fi`, { timeoutMs: 120_000, keepChars: 64 * 2 ** 20, ...(o.signal ? { signal: o.signal } : {}) });
  if (r.code === 3) {
    o.log(`SBOM: none (the guest has no ${INVENTORY_GUEST_PATH}: its seal takes no package inventory)`);
    return undefined;
  }
  if (r.code !== 0) throw new SbomError(`reading ${INVENTORY_GUEST_PATH} in the guest failed (exit ${r.code ?? 'by a signal'}): ${printable(r.stderr.trim(), 300)}`);
  const file = await writeSbom(parseInventory(r.stdout, `guest:${INVENTORY_GUEST_PATH}`), o.subject, o.out);
  o.log(sbomLogLine(file));
  return file;
}

/** labforge's commit for the SBOM: GITHUB_SHA in a workflow, else none. */
export function buildGitSha(env: NodeJS.ProcessEnv = process.env): string | undefined {
  return env.GITHUB_SHA && /^[0-9a-f]{40}$/.test(env.GITHUB_SHA) ? env.GITHUB_SHA : undefined;
}
