/**
 * The guest's package inventory: the JSON file packer/guest/sbom-inventory.sh writes at seal time (every dpkg
 * package with version, architecture and source; the OS; labforge's orchestrator and drivers; the lab's
 * versions), read on the build host to make the SBOM (sbom.ts). It comes out of a guest, so it is checked
 * against sbom-inventory.schema.json (beside this file) with Ajv before anything uses it; the first problem is
 * one line naming the file and the field.
 */
import { readFile } from 'node:fs/promises';
import { Ajv, type ErrorObject } from 'ajv';
import schema from './sbom-inventory.schema.json' with { type: 'json' };
import { printable } from './escape.js';

/** Where the seal writes the inventory inside the guest. */
export const INVENTORY_GUEST_PATH = '/var/lib/hedgehog-lab/sbom-inventory.json';

interface InventoryFile {
  path: string;
  sha256: string;
}

export interface SbomInventory {
  inventoryVersion: 1;
  /** UTC time it was taken (seal time). */
  takenAt: string;
  /** From the guest's /etc/os-release. */
  os: { id: string; versionId: string; versionCodename: string; prettyName: string };
  /** Every installed dpkg package, sorted by name. */
  packages: { name: string; version: string; architecture: string; sourceName: string; sourceVersion: string }[];
  labforge: { orchestrator: InventoryFile | null; drivers: (InventoryFile & { name: string })[]; driver: string; buildType: string };
  /** `*_VERSION` settings of lab.conf, and the lab's tools found in the image. */
  lab: { versions: Record<string, string>; tools: (InventoryFile & { name: string })[] };
}

/** The inventory is missing or malformed: one line, which file, what is wrong, what to do. */
export class SbomInventoryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SbomInventoryError';
  }
}

const ajv = new Ajv({ allErrors: false, strict: true, allowUnionTypes: true });
const validate = ajv.compile<SbomInventory>(schema);

function describe(e: ErrorObject): string {
  const at = e.instancePath.replace(/^\//, '').replace(/\//g, '.') || '(top level)';
  switch (e.keyword) {
    case 'required':
      return `${at}: ${(e.params as { missingProperty: string }).missingProperty} is missing`;
    case 'additionalProperties':
      return `${at}: ${printable((e.params as { additionalProperty: string }).additionalProperty, 60)} is not a known field`;
    case 'const':
      return `${at}: must be ${String((e.params as { allowedValue: unknown }).allowedValue)}`;
    default:
      return `${at} ${e.message ?? 'is invalid'}`;
  }
}

/** Parses and checks an inventory text; `source` names it in errors. */
export function parseInventory(text: string, source: string): SbomInventory {
  const fix = "the seal's packer/guest/sbom-inventory.sh writes it: rebuild the image with this labforge's packer/guest";
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new SbomInventoryError(`package inventory ${printable(source)}: not JSON (${printable((e as Error).message, 120)}; ${fix})`);
  }
  if (!validate(data)) throw new SbomInventoryError(`package inventory ${printable(source)}: ${describe(validate.errors![0]!)} (${fix})`);
  return data;
}

/** Reads and checks an inventory file. */
export async function readInventory(path: string): Promise<SbomInventory> {
  const text = await readFile(path, 'utf8').catch((e: NodeJS.ErrnoException) => {
    throw new SbomInventoryError(`package inventory ${printable(path)}: cannot be read (${e.code ?? e.message}; the seal writes it to ${INVENTORY_GUEST_PATH} in the guest)`);
  });
  return parseInventory(text, path);
}
