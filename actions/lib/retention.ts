/**
 * Retention: keep the newest N releases of a build type and delete the older ones (their files and their
 * catalog entries), never the release just published. A dry run only lists what would go.
 *
 * "Newest" is by semantic version, so a late hotfix of an old line (1.3.1 published after 1.4.0) is still
 * the older release.
 */
import semver from 'semver';
import type { ArtifactStore } from './artifact-store.js';
import { readCatalog, updateCatalog, withoutReleases, type CatalogRelease } from './release-catalog.js';
import { releasePrefix, type BuildType } from './release-names.js';

export interface RetentionOptions {
  buildType: BuildType;
  /** Releases of this build type to keep (≥ 1). */
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

/** Picks the releases beyond the newest `keep` of one build type (never `protect`). Pure; for tests too. */
export function releasesToDelete(releases: CatalogRelease[], opts: Pick<RetentionOptions, 'buildType' | 'keep' | 'protect'>): { kept: CatalogRelease[]; gone: CatalogRelease[] } {
  const ofType = releases.filter((r) => r.buildType === opts.buildType).sort((a, b) => semver.rcompare(a.version, b.version));
  const kept = ofType.slice(0, opts.keep);
  const gone = ofType.slice(opts.keep).filter((r) => r.version !== opts.protect?.version);
  const protectedOld = ofType.slice(opts.keep).filter((r) => r.version === opts.protect?.version);
  return { kept: [...kept, ...protectedOld], gone };
}

/** Applies retention to a destination; returns what was (or would be) deleted. */
export async function applyRetention(store: ArtifactStore, opts: RetentionOptions): Promise<RetentionResult> {
  const log = opts.log ?? (() => {});
  const { catalog } = await readCatalog(store);
  const { kept, gone } = releasesToDelete(catalog.releases, opts);
  const result: RetentionResult = { dryRun: opts.dryRun, kept: kept.map((r) => r.version), deleted: [] };
  for (const r of gone) {
    const keys = (await store.list(releasePrefix(r.buildType, r.version))).map((e) => e.key);
    result.deleted.push({ version: r.version, keys });
  }
  if (gone.length === 0) {
    log(`retention: ${kept.length} ${opts.buildType} release(s), keeping up to ${opts.keep}; nothing to delete`);
    return result;
  }
  for (const d of result.deleted) log(`retention: ${opts.dryRun ? 'would delete' : 'deleting'} ${opts.buildType} v${d.version} (${d.keys.length} file(s))`);
  if (opts.dryRun) return result;
  // The catalog first, so that the portal never links to a file that is about to disappear.
  await updateCatalog(store, withoutReleases(gone.map((r) => ({ version: r.version, buildType: r.buildType }))), { log });
  for (const d of result.deleted) for (const key of d.keys) await store.remove(key);
  return result;
}
