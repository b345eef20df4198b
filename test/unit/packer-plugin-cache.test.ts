import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pluginCacheKey, pluginCacheKeyPrefix, requiredPluginBlocks } from '../../actions/lib/packer-plugin-cache.js';

const linux = { os: 'linux', arch: 'x64' };
const qemu14 = `packer {
  required_plugins {
    qemu = {
      version = ">= 1.1.0" # the qemu builder
      source  = "github.com/hashicorp/qemu"
    }
  }
}
source "qemu" "x" {}
`;
let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'labforge-plugin-cache-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const write = (name: string, text: string) => {
  const p = join(dir, name);
  mkdirSync(join(p, '..'), { recursive: true });
  writeFileSync(p, text);
  return p;
};

describe('plugin cache key', () => {
  it('is keyed on the required_plugins block, not on comments, spacing or the rest of the template', async () => {
    const a = await pluginCacheKey(write('a/t.pkr.hcl', qemu14), linux);
    const b = await pluginCacheKey(write('b/t.pkr.hcl', qemu14.replace(' # the qemu builder', '').replace(/ {2}/g, '    ') + '\nbuild { sources = ["source.qemu.x"] }\n'), linux);
    expect(a).toMatch(/^packer-plugins-linux-x64-[0-9a-f]{16}$/);
    expect(b).toBe(a);
  });

  it('changes when a plugin version or the platform changes', async () => {
    const a = await pluginCacheKey(write('c/t.pkr.hcl', qemu14), linux);
    const bumped = await pluginCacheKey(write('d/t.pkr.hcl', qemu14.replace('>= 1.1.0', '>= 1.1.1')), linux);
    expect(bumped).not.toBe(a);
    expect(await pluginCacheKey(write('e/t.pkr.hcl', qemu14), { os: 'linux', arch: 'arm64' })).not.toBe(a);
  });

  it('reads every *.pkr.hcl of a template directory', async () => {
    write('f/plugins.pkr.hcl', qemu14);
    write('f/build.pkr.hcl', 'build {}\n');
    expect(await pluginCacheKey(join(dir, 'f'), linux)).toBe(await pluginCacheKey(join(dir, 'c', 't.pkr.hcl'), linux));
  });

  it('is undefined for a template without plugin requirements (Packer 1.6 style)', async () => {
    expect(await pluginCacheKey(write('g/t.pkr.hcl', 'source "null" "x" { communicator = "none" }\n'), linux)).toBeUndefined();
  });

  it('finds nested blocks whole', () => {
    expect(requiredPluginBlocks(qemu14)).toEqual(['required_plugins { qemu = { version = ">= 1.1.0" source = "github.com/hashicorp/qemu" } }']);
    expect(pluginCacheKeyPrefix(linux)).toBe('packer-plugins-linux-x64-');
  });
});
