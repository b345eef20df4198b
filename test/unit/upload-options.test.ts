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

  it('never echoes key material back in the error', () => {
    expect(() => parseDestination('-----BEGIN PRIVATE KEY-----abc')).toThrow(/looks like key material/);
    try {
      parseDestination('-----BEGIN PRIVATE KEY-----abc');
    } catch (e) {
      expect((e as Error).message).not.toContain('abc');
    }
  });
});
