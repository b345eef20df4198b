/**
 * The names and paths every labforge component agrees on (see docs/ and the design notes): build types,
 * release tags, artifact base names and the storage layout.
 */
import semver from 'semver';

export const BUILD_TYPES = ['standard', 'prewarmed'] as const;
export type BuildType = (typeof BUILD_TYPES)[number];

export function isBuildType(value: string): value is BuildType {
  return (BUILD_TYPES as readonly string[]).includes(value);
}

/** `hedgehog-lab-<build-type>-<version>`: the base name of the OVA and its companion files. */
export function artifactBaseName(buildType: BuildType, version: string): string {
  return `hedgehog-lab-${buildType}-${version}`;
}

/** `releases/v<version>/<build-type>/`, under an optional storage prefix. */
export function releasePrefix(buildType: BuildType, version: string, prefix = ''): string {
  const base = prefix.replace(/^\/+|\/+$/g, '');
  return `${base ? `${base}/` : ''}releases/v${version}/${buildType}/`;
}

export interface ReleaseTag {
  buildType: BuildType;
  version: string;
  /** The `.N` of `vX.Y.Z-prewarmed.N`: a rebuild of the same pre-warmed release. */
  rebuild?: number;
}

/**
 * Reads a release tag: `vX.Y.Z` (any semver, e.g. `v1.4.0-rc.1`) is a standard release,
 * `vX.Y.Z-prewarmed` or `vX.Y.Z-prewarmed.N` a pre-warmed one. Returns undefined for anything else.
 * Accepts a bare tag or a full `refs/tags/…` ref.
 */
export function parseReleaseTag(tagOrRef: string): ReleaseTag | undefined {
  const tag = tagOrRef.replace(/^refs\/tags\//, '');
  if (!tag.startsWith('v')) return undefined;
  const body = tag.slice(1);
  const warm = /^(.+)-prewarmed(?:\.(\d+))?$/.exec(body);
  if (warm) {
    const version = warm[1] ?? '';
    if (semver.valid(version) === null) return undefined;
    return warm[2] === undefined ? { buildType: 'prewarmed', version } : { buildType: 'prewarmed', version, rebuild: Number(warm[2]) };
  }
  if (semver.valid(body) === null || body.includes('prewarmed')) return undefined;
  return { buildType: 'standard', version: body };
}

/** The tag a release of this type and version is published under. */
export function releaseTag(buildType: BuildType, version: string): string {
  return buildType === 'prewarmed' ? `v${version}-prewarmed` : `v${version}`;
}
