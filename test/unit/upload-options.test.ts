import { describe, expect, it } from '@jest/globals';
import { InputError, inputsFrom } from '../../actions/lib/inputs.js';
import { parseDestination, readUploadOptions } from '../../actions/lib/upload-options.js';

describe('upload inputs', () => {
  it('reads a release upload to GCS with defaults', () => {
    const o = readUploadOptions(inputsFrom({ path: 'out/*.ova', destination: 'gs://my-labs/hedgehog/', version: 'v1.4.0', 'build-type': 'prewarmed' }));
    expect(o).toMatchObject({ path: ['out/*.ova'], version: '1.4.0', buildType: 'prewarmed', overwrite: false, parallelism: 8, chunkSizeMib: 16, retentionKeep: 0, portal: false });
    expect(o.destination).toEqual({ kind: 'gcs', uri: 'gs://my-labs/hedgehog', location: { bucket: 'my-labs', prefix: 'hedgehog/' } });
  });

  it('reads a file:/// destination', () => {
    expect(parseDestination('file:///srv/labs')).toEqual({ kind: 'file', uri: 'file:///srv/labs', dir: '/srv/labs' });
  });

  it.each([
    [{ destination: 'gs://bkt/x' }, 'path'],
    [{ path: 'a.ova', destination: '/srv/labs' }, 'destination'],
    [{ path: 'a.ova', destination: 's3://bucket/x' }, 'destination'],
    [{ path: 'a.ova', destination: 'gs://B_ad' }, 'destination'],
    [{ path: 'a.ova', destination: 'gs://bkt/x', version: '1.0.0' }, 'build-type'],
    [{ path: 'a.ova', destination: 'gs://bkt/x', version: '1.0', 'build-type': 'standard' }, 'version'],
    [{ path: 'a.ova', destination: 'gs://bkt/x', parallelism: '0' }, 'parallelism'],
    [{ path: 'a.ova', destination: 'gs://bkt/x', 'make-public': 'true', 'signed-url-hours': '2' }, 'signed-url-hours'],
    [{ path: 'a.ova', destination: 'file:///srv', 'make-public': 'true' }, 'make-public'],
    [{ path: 'a.ova', destination: 'gs://bkt/x', endpoint: 'localhost:1' }, 'endpoint'],
    [{ path: 'a.ova', destination: 'gs://bkt/x', 'retention-keep': '0' }, 'retention-keep'],
    [{ path: 'a.ova', destination: '{"type": "service_account", "private_key": "x"}' }, 'destination'],
  ])('rejects %j naming the input %s', (values, input) => {
    let err: unknown;
    try {
      readUploadOptions(inputsFrom(values));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InputError);
    expect((err as InputError).input).toBe(input);
  });

  it.each([
    ['gs://bkt/../x', "'gs://bkt/../x' has a '.' or '..' segment in its prefix"],
    ['gs://bkt/labs/.', "'gs://bkt/labs/.' has a '.' or '..' segment in its prefix"],
    ['gs://bkt//labs', "'gs://bkt//labs' has an empty segment ('//') in its prefix"],
    ['gs://bkt/a//b/', "'gs://bkt/a//b/' has an empty segment ('//') in its prefix"],
    ['file:///srv/a%2F..%2F..', "'file:///srv/a%2F..%2F..' has an encoded slash (%2F or %5C) in its path"],
    ['file:///srv/%2E%2E/etc', "'file:///srv/%2E%2E/etc' has a '.' or '..' path segment"],
    ['file:///srv/../etc', "'file:///srv/../etc' has a '.' or '..' path segment"],
    ['file:///srv/./labs', "'file:///srv/./labs' has a '.' or '..' path segment"],
    ['file:///srv//labs', "'file:///srv//labs' has an empty path segment ('//')"],
    ['file:///srv/labs?x=1', "'file:///srv/labs?x=1' has a '?' or '#' (a query or fragment, not part of a directory)"],
    ['file:///srv/%ZZ', "'file:///srv/%ZZ' has a malformed %-escape in its path"],
    ['file://host/srv', "'file://host/srv' is not a file:///DIR URI"],
  ])('refuses the destination %s: %s', (raw, problem) => {
    expect(() => parseDestination(raw)).toThrow(new RegExp(`^destination: ${problem.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} \\(`));
  });

  it('accepts plain prefixes and decodes a file:// path once', () => {
    expect(parseDestination('gs://bkt/a/b/')).toMatchObject({ kind: 'gcs', location: { bucket: 'bkt', prefix: 'a/b/' } });
    expect(parseDestination('gs://bkt')).toMatchObject({ kind: 'gcs', location: { bucket: 'bkt', prefix: '' } });
    expect(parseDestination('file:///srv/my%20labs/')).toMatchObject({ kind: 'file', dir: '/srv/my labs' });
    expect(parseDestination('file:///srv/50%25')).toMatchObject({ kind: 'file', dir: '/srv/50%' });
  });

  it('reads allow-non-ova (off unless set)', () => {
    expect(readUploadOptions(inputsFrom({ path: 'a.ova', destination: 'gs://bkt/x' })).allowNonOva).toBe(false);
    expect(readUploadOptions(inputsFrom({ path: 'a.bin', destination: 'gs://bkt/x', 'allow-non-ova': 'true' })).allowNonOva).toBe(true);
  });

  it('never echoes key material back in the error', () => {
    expect(() => parseDestination('-----BEGIN PRIVATE KEY-----abc')).toThrow(/looks like key material/);
    try {
      parseDestination('-----BEGIN PRIVATE KEY-----abc');
    } catch (e) {
      expect((e as Error).message).not.toContain('abc');
    }
  });
});
