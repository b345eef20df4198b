import { describe, expect, it } from '@jest/globals';
import { InputError } from '../../actions/lib/inputs.js';
import { artifactBaseName, checkApplianceName, parseArtifactBaseName, parseReleaseTag, releasePrefix, releaseTag } from '../../actions/lib/release-names.js';

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
    expect(artifactBaseName('hedgehog-lab', 'prewarmed', '1.4.0')).toBe('hedgehog-lab-prewarmed-1.4.0');
    expect(artifactBaseName('demo-lab', 'standard', '1.4.0-rc.1')).toBe('demo-lab-standard-1.4.0-rc.1');
    expect(releasePrefix('standard', '1.4.0')).toBe('releases/v1.4.0/standard/');
    expect(releasePrefix('standard', '1.4.0', '/labs/')).toBe('labs/releases/v1.4.0/standard/');
    expect(releaseTag('prewarmed', '1.4.0')).toBe('v1.4.0-prewarmed');
    expect(releaseTag('standard', '1.4.0')).toBe('v1.4.0');
  });
});

describe('appliance names in artifact names', () => {
  it.each(['Hedgehog', 'hedgehog_lab', '-lab', 'lab-', 'a--b', '1lab', 'packer/demo-lab', ''])('refuses %j as an appliance name, naming the input', (name) => {
    expect(() => artifactBaseName(name, 'standard', '1.0.0')).toThrow(InputError);
    expect(() => artifactBaseName(name, 'standard', '1.0.0')).toThrow(/^appliance: '.*' is not an appliance name \(use lower-case letters/);
    expect(() => checkApplianceName(name, 'my-input')).toThrow(/^my-input: /);
  });

  it('reads a base name or a file name back into appliance, build type and version', () => {
    expect(parseArtifactBaseName('hedgehog-lab-prewarmed-1.4.0')).toEqual({ appliance: 'hedgehog-lab', buildType: 'prewarmed', version: '1.4.0' });
    expect(parseArtifactBaseName('demo-lab-standard-1.4.0-rc.1.ova')).toEqual({ appliance: 'demo-lab', buildType: 'standard', version: '1.4.0-rc.1' });
    expect(parseArtifactBaseName('demo-lab-standard-2.0.0.ova.sha256')).toEqual({ appliance: 'demo-lab', buildType: 'standard', version: '2.0.0' });
    expect(parseArtifactBaseName('x-prewarmed-2.0.0.metadata.json')).toEqual({ appliance: 'x', buildType: 'prewarmed', version: '2.0.0' });
    for (const name of ['hedgehog-lab-warm-1.0.0.ova', 'standard-1.0.0.ova', 'hedgehog-lab-standard-latest.ova', 'Lab-standard-1.0.0.ova']) expect(parseArtifactBaseName(name)).toBeUndefined();
  });

  it('round-trips every name it makes', () => {
    for (const appliance of ['hedgehog-lab', 'demo-lab', 'a', 'lab2-x9'])
      for (const buildType of ['standard', 'prewarmed'] as const)
        for (const version of ['1.0.0', '0.0.0-dev', '1.4.0-rc.1'])
          expect(parseArtifactBaseName(`${artifactBaseName(appliance, buildType, version)}.ova`)).toEqual({ appliance, buildType, version });
  });
});
