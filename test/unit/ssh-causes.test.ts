import { describe, expect, it } from '@jest/globals';
import { SSH_CAUSE_INFO, fixesFor } from '../../actions/lib/ssh-causes.js';

describe('fixesFor: the likeliest fix first for the credentials tried', () => {
  const all = SSH_CAUSE_INFO['auth-rejected'].fix;

  it('a refused key puts "Key not authorized" first, a refused password "Wrong password"', () => {
    expect(fixesFor('auth-rejected', { key: true, password: false })[0]).toMatch(/^Key not authorized:/);
    expect(fixesFor('auth-rejected', { key: false, password: true })[0]).toMatch(/^Wrong password:/);
  });

  it('keeps every fix, only reordered; both or neither credential keep the table order', () => {
    for (const tried of [{ key: true, password: false }, { key: false, password: true }]) expect([...fixesFor('auth-rejected', tried)].sort()).toEqual([...all].sort());
    expect(fixesFor('auth-rejected', { key: true, password: true })).toEqual(all);
    expect(fixesFor('auth-rejected', { key: false, password: false })).toEqual(all);
  });

  it('other causes keep their order', () => {
    expect(fixesFor('key-algorithm-rejected', { key: true, password: false })).toEqual(SSH_CAUSE_INFO['key-algorithm-rejected'].fix);
  });
});
