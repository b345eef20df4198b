import { afterAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InputError, inputsFrom } from '../../actions/lib/inputs.js';
import { checkEndpoint, parseDestination, readPortalOptions, readUploadOptions } from '../../actions/lib/upload-options.js';

const tmp = mkdtempSync(join(tmpdir(), 'labforge-upload-options-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

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

  it('refuses a file:// destination that names a file (or lies under one) at input time', () => {
    const file = join(tmp, 'afile');
    writeFileSync(file, 'x');
    expect(() => parseDestination(`file://${file}`)).toThrow(new RegExp(`^destination: ${file} is a file, expected a directory \\(`));
    expect(() => parseDestination(`file://${file}/labs`)).toThrow(new RegExp(`^destination: ${file} is a file, expected a directory \\(`));
    expect(parseDestination(`file://${tmp}/not-yet/labs`)).toMatchObject({ kind: 'file', dir: `${tmp}/not-yet/labs` });
  });

  it.each([
    ['http://127.0.0.1:99999', /^endpoint: 'http:\/\/127\.0\.0\.1:99999' has port 99999, which is not a port \(use a port from 1 to 65535/],
    ['http://127.0.0.1:0', /^endpoint: 'http:\/\/127\.0\.0\.1:0' has port 0, which is not a port \(/],
    ['http://127.0.0.1:1\n::error::x', /^endpoint: 'http:\/\/127\.0\.0\.1:1\\u000a::error::x' contains a line break \(/],
    ['http://127.0.0.1:1/\tx', /contains a TAB \(/],
    ['http://127.0.0.1:4443/\x1b[2J', /contains the control character \\u001b/],
    ['localhost port 8080', /^endpoint: 'localhost port 8080' is not a URL \(/],
    ['ftp://127.0.0.1:21', /^endpoint: 'ftp:\/\/127\.0\.0\.1:21' is not an http\(s\) URL \(/],
    ['localhost:1', /is not an http\(s\) URL/],
    ['http://', /^endpoint: 'http:\/\/' is not a URL/],
  ])('refuses the endpoint %j in one line', (raw, message) => {
    expect(() => checkEndpoint(raw)).toThrow(InputError);
    expect(() => checkEndpoint(raw)).toThrow(message);
    expect(() => readUploadOptions(inputsFrom({ path: 'a.ova', destination: 'gs://bkt/x', endpoint: raw }))).toThrow(message);
  });

  it.each(['http://127.0.0.1:4443', 'https://storage.googleapis.com', 'http://[::1]:65535/', 'http://localhost:1/storage/v1'])('accepts the endpoint %s', (raw) => {
    expect(readUploadOptions(inputsFrom({ path: 'a.ova', destination: 'gs://bkt/x', endpoint: raw })).endpoint).toBe(raw);
  });

  it.each([
    ['first-boot', '5 min\x1b]0;x\x07', /^first-boot: '5 min\\u001b\]0;x\\u0007' contains the control character \\u001b \(give the first-boot expectation on one line/],
    ['reason', 'workshop\n::error::pwned', /^reason: 'workshop\\u000a::error::pwned' contains a line break \(give the reason on one line/],
    ['login', 'user lab\x1b[2J', /^login: 'user lab\\u001b\[2J' contains the control character \\u001b \(/],
  ])('refuses a control character in the free-text input %s, echoed escaped', (input, value, message) => {
    expect(() => readUploadOptions(inputsFrom({ path: 'a.ova', destination: 'gs://bkt/x', [input]: value }))).toThrow(message);
  });

  it('keeps free text without control characters', () => {
    const o = readUploadOptions(inputsFrom({ path: 'a.ova', destination: 'gs://bkt/x', 'first-boot': '≈ 5 min (measured)', reason: 'Workshop "Zürich" 2026', login: 'user lab, password lab' }));
    expect(o).toMatchObject({ firstBoot: '≈ 5 min (measured)', reason: 'Workshop "Zürich" 2026', login: 'user lab, password lab' });
    expect(() => readPortalOptions(inputsFrom({ destination: 'gs://bkt/x', title: 'Labs\n::error::x' }))).toThrow(/^title: .* contains a line break/);
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
