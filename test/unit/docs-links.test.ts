/**
 * Every relative link in README.md and docs/ resolves: the file or directory exists and, for a link into a
 * Markdown file with #anchor, the heading (GitHub's slug) or an explicit <a id/name> exists. Each broken
 * link is listed with file and line. Links in code blocks and code spans are not links.
 */
import { describe, expect, it } from '@jest/globals';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { repoRoot } from '../support/run-action.js';

/** README.md and every Markdown file under docs/. */
function markdownFiles(): string[] {
  const files = [join(repoRoot, 'README.md')];
  const walk = (dir: string) => {
    if (!existsSync(dir)) return;
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(dir, e.name));
      else if (e.name.endsWith('.md')) files.push(join(dir, e.name));
    }
  };
  walk(join(repoRoot, 'docs'));
  return files.sort();
}

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens, duplicates numbered. */
export function headingAnchors(markdown: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  let fenced = false;
  for (const line of markdown.split('\n')) {
    if (/^\s*(```|~~~)/.test(line)) fenced = !fenced;
    if (fenced) continue;
    const h = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (h) {
      const text = (h[1] ?? '').replace(/`/g, '').replace(/\[([^\]]*)\]\([^)]*\)/g, '$1');
      const base = text.toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-');
      const n = seen.get(base) ?? 0;
      seen.set(base, n + 1);
      anchors.add(n === 0 ? base : `${base}-${n}`);
    }
    for (const m of line.matchAll(/<a\s+(?:id|name)="([^"]+)"/g)) anchors.add(m[1] ?? '');
  }
  return anchors;
}

interface Link {
  line: number;
  text: string;
  target: string;
}

/** The links of a Markdown text: inline `[text](target)`, images, and reference definitions `[id]: target`. */
export function linksIn(markdown: string): Link[] {
  const links: Link[] = [];
  let fenced = false;
  markdown.split('\n').forEach((raw, i) => {
    if (/^\s*(```|~~~)/.test(raw)) {
      fenced = !fenced;
      return;
    }
    if (fenced) return;
    const line = raw.replace(/`[^`]*`/g, (s) => ' '.repeat(s.length));
    for (const m of line.matchAll(/!?\[((?:[^\]\\]|\\.)*)\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) {
      // Matched on the line with code spans blanked, shown as written.
      links.push({ line: i + 1, text: raw.slice(m.index, m.index + m[0].length), target: m[2] ?? '' });
    }
    const def = /^\s{0,3}\[([^\]]+)\]:\s*<?(\S+?)>?(?:\s+"[^"]*")?\s*$/.exec(line);
    if (def) links.push({ line: i + 1, text: `[${def[1]}]:`, target: def[2] ?? '' });
  });
  return links;
}

/** Every broken relative link, as `file:line: [text](target): why`. */
export function brokenLinks(files: string[], root = repoRoot): string[] {
  const problems: string[] = [];
  const anchorCache = new Map<string, Set<string>>();
  const anchorsOf = (path: string) => {
    if (!anchorCache.has(path)) anchorCache.set(path, headingAnchors(readFileSync(path, 'utf8')));
    return anchorCache.get(path)!;
  };
  for (const file of files) {
    const rel = relative(root, file);
    for (const link of linksIn(readFileSync(file, 'utf8'))) {
      const t = link.target;
      if (/^[a-z][a-z0-9+.-]*:/i.test(t) || t.startsWith('//')) continue; // http:, https:, mailto:, …
      const [pathPart = '', anchor] = t.split('#', 2) as [string, string | undefined];
      const target = pathPart === '' ? file : resolve(dirname(file), decodeURIComponent(pathPart));
      const where = `${rel}:${link.line}: ${link.text}`;
      if (!target.startsWith(root)) {
        problems.push(`${where}: points outside the repository`);
        continue;
      }
      if (!existsSync(target)) {
        problems.push(`${where}: ${relative(root, target)} does not exist`);
        continue;
      }
      if (anchor !== undefined && anchor !== '' && statSync(target).isFile() && target.endsWith('.md') && !anchorsOf(target).has(anchor.toLowerCase())) {
        problems.push(`${where}: ${relative(root, target)} has no heading for #${anchor}`);
      }
    }
  }
  return problems;
}

describe('links in README.md and docs/', () => {
  it('all resolve', () => {
    const files = markdownFiles();
    expect(files.length).toBeGreaterThan(1);
    expect(brokenLinks(files)).toEqual([]);
  });
});

describe('the link check itself', () => {
  it('reads links, anchors and reference definitions, and skips code', () => {
    const md = ['# Install the OVA', '', 'See [faq](FAQ.md#which-build), ![x](img.png) and `[no](code.md)`.', '```', '[no](fenced.md)', '```', '[ref]: ../README.md', '## Install the OVA'].join('\n');
    expect(linksIn(md).map((l) => `${l.line} ${l.target}`)).toEqual(['3 FAQ.md#which-build', '3 img.png', '7 ../README.md']);
    expect([...headingAnchors(md)]).toEqual(['install-the-ova', 'install-the-ova-1']);
    expect([...headingAnchors('## Standard vs. pre-warmed: which `build`?')]).toEqual(['standard-vs-pre-warmed-which-build']);
  });

  it('lists a missing file and a missing heading with file and line', () => {
    const root = mkdtempSync(join(tmpdir(), 'labforge-links-'));
    try {
      mkdirSync(join(root, 'docs'));
      writeFileSync(join(root, 'README.md'), '# Labforge\n\nSee [install](docs/INSTALL.md#import-the-ova) and [gone](docs/GONE.md).\n');
      writeFileSync(join(root, 'docs', 'INSTALL.md'), '# Install\n\n## Import\n\nBack to the [top](../README.md#labforge), [up](../../outside.md), [here](#install).\n');
      expect(brokenLinks([join(root, 'README.md'), join(root, 'docs', 'INSTALL.md')], root)).toEqual([
        'README.md:3: [install](docs/INSTALL.md#import-the-ova): docs/INSTALL.md has no heading for #import-the-ova',
        'README.md:3: [gone](docs/GONE.md): docs/GONE.md does not exist',
        'docs/INSTALL.md:5: [up](../../outside.md): points outside the repository',
      ]);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
