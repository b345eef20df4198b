/**
 * The release catalog, `<prefix>/index.json`: every published release with its files, sizes, checksums and
 * links. The portal is generated from it and retention reads it.
 *
 * Updates are read-modify-write with a generation precondition (GCS `ifGenerationMatch`, a locked
 * generation check for directories) and are retried on conflict, so two releases published at the same
 * time never lose each other's entry.
 */
import semver from 'semver';
import { PreconditionFailedError, type ArtifactStore } from './artifact-store.js';
import { LEGACY_APPLIANCE, type BuildType } from './release-names.js';

export const CATALOG_KEY = 'index.json';
export const CATALOG_SCHEMA = 1;

/**
 * One published release: a version of one build type of one appliance. Two appliances may publish the same
 * version and build type; their entries (and files) are told apart by `appliance`.
 */
export interface CatalogRelease {
  /** The appliance's name (`hedgehog-lab`, `demo-lab`); entries written before it was recorded read as `hedgehog-lab`. */
  appliance: string;
  version: string;
  buildType: BuildType;
  tag: string;
  /** The main artifact's file name (`hedgehog-lab-standard-1.4.0.ova`). */
  name: string;
  /** Key of the main artifact, relative to the prefix (`releases/v1.4.0/standard/…ova`). */
  key: string;
  uri: string;
  /** A plain download URL (public object URL or file URL; signed URLs are made when the portal is built). */
  url: string;
  size: number;
  sha256: string;
  /** Base64, as GCS shows it. */
  crc32c: string;
  sha256Key: string;
  metadataKey: string;
  /** Other files published with the release (keys). */
  files: string[];
  /** The appliance's SBOM published beside the OVA (`<base>.cdx.json`), when the build produced one. */
  sbom?: SbomReference;
  buildDate: string;
  gitSha: string;
  workflowRunUrl: string;
  firstBoot: string;
  publishedAt: string;
}

/** An SBOM published with a release: where it is and what it holds (catalog and metadata). */
export interface SbomReference {
  /** Key relative to the prefix in the catalog (`releases/v1.4.0/standard/…cdx.json`); the file name in the metadata. */
  key: string;
  /** The SBOM standard and version, e.g. `CycloneDX 1.6`. */
  format: string;
  size: number;
  sha256: string;
  /** How many components (packages) it lists. */
  components: number;
}

export interface Catalog {
  schema: number;
  updated: string;
  releases: CatalogRelease[];
}

export function emptyCatalog(): Catalog {
  return { schema: CATALOG_SCHEMA, updated: new Date(0).toISOString(), releases: [] };
}

/** Parses index.json; a clear error when it is not a labforge catalog. Entries without `appliance` get `hedgehog-lab`. */
export function parseCatalog(text: string, where: string): Catalog {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new Error(`${where} is not valid JSON (${(e as Error).message}); restore it from the bucket's object versions or delete it to start a new catalog`, { cause: e });
  }
  const c = data as Partial<Catalog>;
  if (typeof c !== 'object' || c === null || !Array.isArray(c.releases)) throw new Error(`${where} is not a labforge release catalog (no "releases" array)`);
  const releases = c.releases.map((r: Partial<CatalogRelease>) => ({ ...r, appliance: typeof r.appliance === 'string' && r.appliance !== '' ? r.appliance : LEGACY_APPLIANCE }) as CatalogRelease);
  return { schema: c.schema ?? CATALOG_SCHEMA, updated: c.updated ?? '', releases };
}

/** What tells two catalog entries apart: the appliance, the version and the build type. */
export type ReleaseIdentity = Pick<CatalogRelease, 'appliance' | 'version' | 'buildType'>;

/** Whether two entries are the same release (same appliance, version and build type). */
export function sameRelease(a: ReleaseIdentity, b: ReleaseIdentity): boolean {
  return a.appliance === b.appliance && a.version === b.version && a.buildType === b.buildType;
}

/** Releases grouped by appliance (by name), each newest first: by version (semver), then build type. */
export function sortReleases(releases: CatalogRelease[]): CatalogRelease[] {
  return [...releases].sort((a, b) => {
    const byAppliance = a.appliance.localeCompare(b.appliance);
    if (byAppliance !== 0) return byAppliance;
    const byVersion = semver.rcompare(a.version, b.version);
    return byVersion !== 0 ? byVersion : a.buildType.localeCompare(b.buildType);
  });
}

/** Reads the catalog (empty when there is none yet) and its generation ('0' when absent). */
export async function readCatalog(store: ArtifactStore): Promise<{ catalog: Catalog; generation: string }> {
  const got = await store.readSmall(CATALOG_KEY);
  if (!got) return { catalog: emptyCatalog(), generation: '0' };
  return { catalog: parseCatalog(got.data.toString('utf8'), store.uri(CATALOG_KEY)), generation: got.generation };
}

export interface UpdateCatalogOptions {
  /** Attempts on generation conflicts. Default 20. */
  attempts?: number;
  log?: (line: string) => void;
}

/**
 * Applies `change` to the current catalog and writes it back only if nobody wrote in between; on a
 * conflict it reads again and re-applies `change`. Returns the catalog as written.
 */
export async function updateCatalog(store: ArtifactStore, change: (c: Catalog) => Catalog, opts: UpdateCatalogOptions = {}): Promise<Catalog> {
  const attempts = opts.attempts ?? 20;
  for (let attempt = 1; ; attempt++) {
    const { catalog, generation } = await readCatalog(store);
    const next = change(structuredClone(catalog));
    next.schema = CATALOG_SCHEMA;
    next.updated = new Date().toISOString();
    next.releases = sortReleases(next.releases);
    try {
      await store.writeSmall(CATALOG_KEY, Buffer.from(`${JSON.stringify(next, null, 2)}\n`), {
        contentType: 'application/json',
        ifGeneration: generation,
        cacheControl: 'no-cache, max-age=0',
      });
      return next;
    } catch (e) {
      const conflict = e instanceof PreconditionFailedError || (generation === '0' && (e as Error).name === 'AlreadyPublishedError');
      if (!conflict || attempt >= attempts) throw e;
      opts.log?.(`${store.uri(CATALOG_KEY)} changed while it was being updated (another release?); reading it again (attempt ${attempt + 1})`);
      await new Promise((r) => setTimeout(r, Math.min(2000, 20 * 2 ** attempt) * Math.random()));
    }
  }
}

/** Adds or replaces the entry of one release (same appliance, version and build type); other appliances' entries stay. */
export function withRelease(release: CatalogRelease): (c: Catalog) => Catalog {
  return (c) => ({
    ...c,
    releases: [...c.releases.filter((r) => !sameRelease(r, release)), release],
  });
}

/** Removes the entries of the given releases (each named by appliance, version and build type). */
export function withoutReleases(gone: ReleaseIdentity[]): (c: Catalog) => Catalog {
  return (c) => ({ ...c, releases: c.releases.filter((r) => !gone.some((g) => sameRelease(g, r))) });
}
