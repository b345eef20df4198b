/**
 * Retention: keep the newest N releases of one appliance's build type and delete the older ones (their
 * files and their catalog entries), never the release just published. A dry run only lists what would go.
 *
 * "Newest" is by semantic version, so a late hotfix of an old line (1.3.1 published after 1.4.0) is still
 * the older release. Two appliances share the storage layout (`releases/v<version>/<build-type>/`), so a
 * release's files are the keys its catalog entry records plus the objects named after its own artifact base
 * name (`<appliance>-<build-type>-<version>.…`): another appliance's files in the same directory are never
 * touched, and neither is anything else nobody recorded.
 */
import { basename } from 'node:path';
import semver from 'semver';
import type { ArtifactStore } from './artifact-store.js';
import { readCatalog, updateCatalog, withoutReleases, type CatalogRelease } from './release-catalog.js';
import { artifactBaseName, releasePrefix, type BuildType } from './release-names.js';

export interface RetentionOptions {
  /** The appliance whose releases are considered; other appliances' releases are never counted or deleted. */
  appliance: string;
  buildType: BuildType;
  /** Releases of this appliance and build type to keep (≥ 1). */
  keep: number;
  /** A release that is never deleted (the one just published). */
  protect?: { version: string };
  dryRun: boolean;
  log?: (line: string) => void;
}

export interface RetentionResult {
  dryRun: boolean;
  kept: string[];
  /** Versions deleted (or that would be, in a dry run), with their keys. */
  deleted: { version: string; keys: string[] }[];
}

/**
 * Picks the releases beyond the newest `keep` of one appliance's build type (never `protect`). Pure; for
 * tests too.
 */
export function releasesToDelete(releases: CatalogRelease[], opts: Pick<RetentionOptions, 'appliance' | 'buildType' | 'keep' | 'protect'>): { kept: CatalogRelease[]; gone: CatalogRelease[] } {
  const ofType = releases.filter((r) => r.appliance === opts.appliance && r.buildType === opts.buildType).sort((a, b) => semver.rcompare(a.version, b.version));
  const kept = ofType.slice(0, opts.keep);
  const gone = ofType.slice(opts.keep).filter((r) => r.version !== opts.protect?.version);
  const protectedOld = ofType.slice(opts.keep).filter((r) => r.version === opts.protect?.version);
  return { kept: [...kept, ...protectedOld], gone };
}

/**
 * The keys of one release that exist: the objects of its release directory that its catalog entry records or
 * that are named after its artifact base name. Keys are relative to the store's root (the prefix).
 */
export async function releaseKeys(store: ArtifactStore, r: CatalogRelease): Promise<string[]> {
  const recorded = new Set([r.key, r.sha256Key, r.metadataKey, ...r.files].filter((k) => k !== ''));
  const base = artifactBaseName(r.appliance, r.buildType, r.version);
  const own = (key: string) => recorded.has(key) || basename(key).startsWith(`${base}.`);
  return (await store.list(releasePrefix(r.buildType, r.version))).map((e) => e.key).filter(own).sort();
}

/** Applies retention to a destination; returns what was (or would be) deleted. */
export async function applyRetention(store: ArtifactStore, opts: RetentionOptions): Promise<RetentionResult> {
  const log = opts.log ?? (() => {});
  const { catalog } = await readCatalog(store);
  const { kept, gone } = releasesToDelete(catalog.releases, opts);
  const result: RetentionResult = { dryRun: opts.dryRun, kept: kept.map((r) => r.version), deleted: [] };
  for (const r of gone) result.deleted.push({ version: r.version, keys: await releaseKeys(store, r) });
  const what = `${opts.appliance} ${opts.buildType}`;
  if (gone.length === 0) {
    log(`retention: ${kept.length} ${what} release(s), keeping up to ${opts.keep}; nothing to delete`);
    return result;
  }
  for (const d of result.deleted) log(`retention: ${opts.dryRun ? 'would delete' : 'deleting'} ${what} v${d.version} (${d.keys.length} file(s))`);
  if (opts.dryRun) return result;
  // The catalog first, so that the portal never links to a file that is about to disappear.
  await updateCatalog(store, withoutReleases(gone.map((r) => ({ appliance: r.appliance, version: r.version, buildType: r.buildType }))), { log });
  for (const d of result.deleted) for (const key of d.keys) await store.remove(key);
  return result;
}
