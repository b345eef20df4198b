/* eslint-disable @typescript-eslint/no-explicit-any -- manifests are edited as loose YAML documents here */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse } from 'yaml';
import { generateSeedKeyPair, hashPassword, renderUserData, seedMetaData } from '../../actions/lib/cloud-init-seed.js';

const repo = resolve(import.meta.dirname ?? '.', '../..');
const key = generateSeedKeyPair('labforge-build-1.0.0').publicKey;

describe('the one user-data renderer', () => {
  test('a NoCloud build seed authorizes exactly the build key, for the build user only', () => {
    const text = renderUserData({ users: [{ name: 'labforge', sudo: true, publicKeys: [key], password: 'locked' }, { name: 'lab', password: 'locked' }] });
    expect(text.startsWith('#cloud-config\n')).toBe(true);
    const doc = parse(text) as { users: Record<string, unknown>[] };
    expect(doc.users).toEqual([
      { name: 'labforge', shell: '/bin/bash', sudo: 'ALL=(ALL) NOPASSWD:ALL', lock_passwd: true, ssh_authorized_keys: [key] },
      { name: 'lab', shell: '/bin/bash', lock_passwd: true },
    ]);
    // No `default` user (ubuntu/debian with passwordless sudo) and one key in the whole document.
    expect(text).not.toMatch(/default/);
    expect(text.match(/ssh-ed25519 /g)).toHaveLength(1);
  });

  test('a console password is written only as its SHA-512 crypt hash', async () => {
    const hash = await hashPassword('correct horse');
    expect(hash).toMatch(/^\$6\$[^$]+\$[A-Za-z0-9./]{86}$/);
    const text = renderUserData({ users: [{ name: 'lab', password: { hash } }] });
    expect(text).not.toContain('correct horse');
    expect((parse(text) as { users: { passwd: string; lock_passwd: boolean }[] }).users[0]).toMatchObject({ passwd: hash, lock_passwd: false });
  });

  test('a password that is not one line, or not a hash, is refused', async () => {
    await expect(hashPassword('a\nb')).rejects.toThrow('one non-empty line');
    await expect(hashPassword('')).rejects.toThrow('one non-empty line');
    expect(() => renderUserData({ users: [{ name: 'lab', password: { hash: 'plain text' } }] })).toThrow('not a crypt(3) hash');
  });

  test('autoinstall: the users go to the installed system, the appliance base is kept as it is', () => {
    const base = parse(readFileSync(join(repo, 'packer/hedgehog-lab/seed/user-data.yml'), 'utf8')) as Record<string, any>;
    const doc = parse(renderUserData({ format: 'autoinstall', base, users: [{ name: 'labforge', sudo: true, publicKeys: [key], password: 'locked' }] })) as Record<string, any>;
    expect(doc.autoinstall.storage).toEqual(base.autoinstall.storage);
    expect(doc.autoinstall['user-data'].hostname).toBe('hedgehog-lab');
    expect(doc.autoinstall['user-data'].users[0].ssh_authorized_keys).toEqual([key]);
    expect(doc.users).toBeUndefined();
  });

  test('a base that declares users itself is refused (the renderer owns them)', () => {
    expect(() => renderUserData({ base: { users: ['default'] }, users: [] })).toThrow('must not declare users');
    expect(() => renderUserData({ format: 'autoinstall', base: { autoinstall: { identity: {} } }, users: [] })).toThrow('must not declare users');
    expect(() => renderUserData({ format: 'autoinstall', base: {}, users: [] })).toThrow('needs an `autoinstall:` mapping');
  });

  test('meta-data carries the instance id and, when given, the hostname', () => {
    expect(parse(seedMetaData('i-1', 'demo-lab'))).toEqual({ 'instance-id': 'i-1', 'local-hostname': 'demo-lab' });
    expect(parse(seedMetaData('i-2'))).toEqual({ 'instance-id': 'i-2' });
  });
});

describe('the per-run login key', () => {
  it('is always readable (ssh2 writes an unreadable ed25519 key about once in 270; those are replaced)', async () => {
    const { utils } = (await import('ssh2')).default;
    // 1,500 keys: with the old generator, P(no bad key) ≈ (1 − 11/3000)^1500 ≈ 0.4%.
    for (let i = 0; i < 1500; i++) expect(utils.parseKey(generateSeedKeyPair('attendee').privateKey)).not.toBeInstanceOf(Error);
  });
});
