import { describe, expect, it } from '@jest/globals';
import { artifactBaseName, parseReleaseTag, releasePrefix, releaseTag } from '../../actions/lib/release-names.js';

describe('release tags', () => {
  it.each([
    ['refs/tags/v1.4.0', { buildType: 'standard', version: '1.4.0' }],
    ['v1.4.0-rc.1', { buildType: 'standard', version: '1.4.0-rc.1' }],
    ['refs/tags/v1.4.0-prewarmed', { buildType: 'prewarmed', version: '1.4.0' }],
    ['v2.0.0-prewarmed.3', { buildType: 'prewarmed', version: '2.0.0', rebuild: 3 }],
    ['v1.4.0-rc.1-prewarmed', { buildType: 'prewarmed', version: '1.4.0-rc.1' }],
  ])('reads %s', (tag, expected) => {
    expect(parseReleaseTag(tag)).toEqual(expected);
  });

  it.each(['1.4.0', 'v1.4', 'vnext', 'v1.4.0-prewarmed.x', 'v1.4.0-warm', 'release-1', 'v1.4.0-prewarmedx'])('rejects %s', (tag) => {
    if (tag === 'v1.4.0-warm') {
      // a prerelease that is valid semver is a standard release candidate, not a pre-warmed build
      expect(parseReleaseTag(tag)).toEqual({ buildType: 'standard', version: '1.4.0-warm' });
    } else {
      expect(parseReleaseTag(tag)).toBeUndefined();
    }
  });

  it('names artifacts, prefixes and tags as the design says', () => {
    expect(artifactBaseName('prewarmed', '1.4.0')).toBe('hedgehog-lab-prewarmed-1.4.0');
    expect(releasePrefix('standard', '1.4.0')).toBe('releases/v1.4.0/standard/');
    expect(releasePrefix('standard', '1.4.0', '/labs/')).toBe('labs/releases/v1.4.0/standard/');
    expect(releaseTag('prewarmed', '1.4.0')).toBe('v1.4.0-prewarmed');
    expect(releaseTag('standard', '1.4.0')).toBe('v1.4.0');
  });
});
