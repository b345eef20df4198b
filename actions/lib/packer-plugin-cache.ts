/**
 * Packer plugin cache: `PACKER_PLUGIN_PATH` restored and saved between runs (with @actions/cache in the
 * action), keyed on the template's plugin requirements so that a changed `required_plugins` block misses.
 */
import { createHash } from 'node:crypto';
import { readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';

/** Where the cache lives; the action implements it with @actions/cache, tests with a directory. */
export interface PluginCacheStore {
  /** Restores `path`; returns the key that matched, or undefined on a miss. */
  restore: (path: string, key: string, restoreKeys: string[]) => Promise<string | undefined>;
  save: (path: string, key: string) => Promise<void>;
}

/** The template files Packer reads: the file itself, or every `*.pkr.hcl` / `*.pkr.json` in the directory. */
export async function templateFiles(template: string): Promise<string[]> {
  const info = await stat(template);
  if (info.isFile()) return [template];
  const names = (await readdir(template)).filter((n) => /\.pkr\.(hcl|json)$/.test(n)).sort();
  return names.map((n) => join(template, n));
}

/**
 * The `required_plugins` blocks of HCL template text (inside `packer { … }`), with comments removed and
 * white space normalised, in file order. Returns [] when there are none (Packer 1.6 templates).
 */
export function requiredPluginBlocks(hcl: string): string[] {
  const text = hcl.replace(/(^|[^:])(#|\/\/).*$/gm, '$1').replace(/\/\*[\s\S]*?\*\//g, '');
  const blocks: string[] = [];
  const re = /required_plugins\s*\{/g;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    let depth = 1;
    let i = m.index + m[0].length;
    for (; i < text.length && depth > 0; i++) {
      if (text[i] === '{') depth++;
      else if (text[i] === '}') depth--;
    }
    blocks.push(text.slice(m.index, i).replace(/\s+/g, ' ').trim());
  }
  return blocks;
}

/**
 * The cache key for a template's plugins: `packer-plugins-<os>-<arch>-<sha256 of the requirements>[:16]`,
 * or undefined when the template declares none (nothing to cache).
 */
export async function pluginCacheKey(template: string, platform: { os: string; arch: string } = { os: process.platform, arch: process.arch }): Promise<string | undefined> {
  const blocks: string[] = [];
  for (const file of await templateFiles(template)) {
    const text = await readFile(file, 'utf8');
    if (file.endsWith('.json')) {
      const required = (JSON.parse(text) as { packer?: { required_plugins?: unknown } }).packer?.required_plugins;
      if (required) blocks.push(JSON.stringify(required));
    } else {
      blocks.push(...requiredPluginBlocks(text));
    }
  }
  if (blocks.length === 0) return undefined;
  const digest = createHash('sha256').update(blocks.join('\n')).digest('hex').slice(0, 16);
  return `${pluginCacheKeyPrefix(platform)}${digest}`;
}

/** The restore-key prefix (any earlier plugin set of this platform is better than none). */
export function pluginCacheKeyPrefix(platform: { os: string; arch: string } = { os: process.platform, arch: process.arch }): string {
  return `packer-plugins-${platform.os}-${platform.arch}-`;
}
