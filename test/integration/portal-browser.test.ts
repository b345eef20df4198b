/**
 * The download portal of a file:// bucket in a real browser (Debian's headless Chromium, playwright-core):
 * releases published by the real upload, catalog and portal modules, one with an SBOM; every release shown
 * with its size, SHA-256 and build type; every link resolves to the published object; every Copy button puts
 * the exact command in the clipboard; the page requests nothing but itself; no sideways scroll on a phone;
 * and the folder still works after it is moved, links and copy-paste commands alike.
 *
 * LABFORGE_SCREENSHOTS=1 also writes docs/images/portal.png and docs/images/portal-phone.png from this portal.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Browser } from 'playwright-core';
import { publishPortal } from '../../actions/lib/download-portal.js';
import { DirectoryStore } from '../../actions/lib/file-destination.js';
import { readCatalog, updateCatalog, withRelease, type Catalog } from '../../actions/lib/release-catalog.js';
import { uploadRelease } from '../../actions/lib/release-upload.js';
import { formatBytes } from '../../actions/lib/transfer-progress.js';
import { parseDestination } from '../../actions/lib/upload-options.js';
import { repoRoot } from '../support/run-action.js';
import { writeOvaFixture } from '../support/ova-fixture.js';
import { copyableTexts, copyFromButton, launchChromium, openDetails, openPortal, scrollsSideways, shownLinks, shownReleases } from '../support/portal-browser.js';

const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');
const RELEASES = [
  { appliance: 'demo-lab', version: '1.1.0', buildType: 'standard' },
  { appliance: 'demo-lab', version: '1.0.0', buildType: 'prewarmed' },
  { appliance: 'hedgehog-lab', version: '1.4.0', buildType: 'standard' },
] as const;

let work: string;
let bucket: string;
let browser: Browser;
let catalog: Catalog;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'labforge-portal-browser-'));
  bucket = join(work, 'publisher', 'labs');
  const browserStarted = launchChromium();
  for (const r of RELEASES) {
    const name = `${r.appliance}-${r.buildType}-${r.version}.ova`;
    const ova = await writeOvaFixture(join(work, name), { properties: { appliance: r.appliance, buildType: r.buildType, version: r.version } });
    await uploadRelease({
      path: [ova], destination: parseDestination(pathToFileURL(bucket).href), parallelism: 2, chunkSizeMib: 1, overwrite: false, makePublic: false,
      signedUrlHours: 0, retentionKeep: 0, retentionDryRun: false, portal: false, allowNonOva: false, log: () => {},
      env: { GITHUB_SHA: '4f1c2a9e0b7d3c5a8e6f1b2d9c0a7e3f5b8d1c4a' },
    });
  }
  // The SBOM of demo-lab 1.1.0 standard, published beside its OVA and named in its catalog entry, as the upload does.
  const store = new DirectoryStore({ dir: bucket });
  const sbomKey = 'releases/v1.1.0/standard/demo-lab-standard-1.1.0.cdx.json';
  const sbomFile = join(work, 'demo-lab-standard-1.1.0.cdx.json');
  const components = ['bash', 'cloud-init', 'openssh-server', 'systemd'].map((n) => ({ type: 'library', name: n, version: '1', purl: `pkg:deb/debian/${n}@1` }));
  writeFileSync(sbomFile, JSON.stringify({ bomFormat: 'CycloneDX', specVersion: '1.6', version: 1, components }, null, 2));
  await store.uploadFile({ localPath: sbomFile, key: sbomKey, overwrite: false, contentType: 'application/vnd.cyclonedx+json' });
  const entry = (await readCatalog(store)).catalog.releases.find((r) => r.version === '1.1.0' && r.appliance === 'demo-lab')!;
  const sbom = { key: sbomKey, format: 'CycloneDX 1.6', size: readFileSync(sbomFile).length, sha256: sha256(sbomFile), components: components.length };
  await updateCatalog(store, withRelease({ ...entry, sbom, files: [...entry.files, sbomKey] }));
  await publishPortal(store);
  catalog = (await readCatalog(store)).catalog;
  browser = await browserStarted;
}, 120_000);

afterAll(async () => {
  await browser?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

/** The command lines of DOWNLOADS.md's sh blocks. */
const markdownCommands = (md: string) => [...md.matchAll(/```sh\n([\s\S]*?)```/g)].flatMap((m) => m[1]!.split('\n').filter((l) => l && !l.startsWith('#')));

describe('the portal of a file:// bucket in Chromium', () => {
  it('lists every release with its size, SHA-256 and build type', async () => {
    const p = await openPortal(browser, join(bucket, 'index.html'));
    try {
      const shown = await shownReleases(p.page);
      expect(shown.map((s) => s.id)).toEqual(['demo-lab-standard-1.1.0', 'demo-lab-prewarmed-1.0.0', 'hedgehog-lab-standard-1.4.0']);
      expect(catalog.releases).toHaveLength(RELEASES.length);
      for (const r of catalog.releases) {
        const s = shown.find((x) => x.id === `${r.appliance}-${r.buildType}-${r.version}`)!;
        expect(s.download).toBe(`Download ${r.name}`);
        expect(s.sha256).toBe(r.sha256);
        expect(s.buildType).toBe(r.buildType === 'prewarmed' ? 'pre-warmed' : 'standard');
        expect(s.size).toBe(formatBytes(r.size));
      }
    } finally {
      await p.close();
    }
  });

  it('shows the SBOM as "SBOM (CycloneDX 1.6, 4 packages)" with its SHA-256, in the page and DOWNLOADS.md', async () => {
    const p = await openPortal(browser, join(bucket, 'index.html'));
    try {
      const shown = await shownReleases(p.page);
      const withSbom = shown.filter((s) => s.sbom);
      expect(withSbom.map((s) => s.id)).toEqual(['demo-lab-standard-1.1.0']);
      const sbom = catalog.releases.find((r) => r.sbom)!.sbom!;
      expect(withSbom[0]!.sbom).toEqual({ label: 'SBOM (CycloneDX 1.6, 4 packages)', href: pathToFileURL(join(bucket, sbom.key)).href, sha256: sbom.sha256 });
      expect(sha256(fileURLToPath(withSbom[0]!.sbom!.href))).toBe(sbom.sha256);
      const md = readFileSync(join(bucket, 'DOWNLOADS.md'), 'utf8');
      expect(md).toContain(`[SBOM (CycloneDX 1.6, 4 packages)](${sbom.key}), `);
      expect(md).toContain(`SHA-256 \`${sbom.sha256}\``);
    } finally {
      await p.close();
    }
  });

  it('links every download, .sha256, SBOM and the catalog to an existing object of the bucket', async () => {
    const p = await openPortal(browser, join(bucket, 'index.html'));
    try {
      const links = await shownLinks(p.page);
      expect(links).toHaveLength(1 + catalog.releases.length * 2 + 1); // index.json, OVA + .sha256 each, one SBOM
      for (const href of links) {
        expect(href.startsWith(`${pathToFileURL(bucket).href}/`)).toBe(true);
        expect(existsSync(fileURLToPath(href))).toBe(true);
      }
      for (const s of await shownReleases(p.page)) {
        expect(sha256(fileURLToPath(s.href))).toBe(s.sha256);
        expect(readFileSync(fileURLToPath(s.sha256Href), 'utf8')).toBe(`${s.sha256}  ${s.download.replace('Download ', '')}\n`);
      }
      // A link followed in the browser: the .sha256 companion opens as text.
      const first = (await shownReleases(p.page))[0]!;
      await p.page.goto(first.sha256Href);
      expect(await p.page.textContent('body')).toContain(first.sha256);
    } finally {
      await p.close();
    }
  });

  it('every Copy button puts the exact command in the clipboard', async () => {
    const p = await openPortal(browser, join(bucket, 'index.html'));
    try {
      const md = markdownCommands(readFileSync(join(bucket, 'DOWNLOADS.md'), 'utf8'));
      const blocks = (await shownReleases(p.page)).flatMap((s) => [{ label: 'SHA-256', text: s.sha256, hasCopyButton: true }, ...(s.sbom ? [{ label: 'SBOM SHA-256', text: s.sbom.sha256, hasCopyButton: true }] : []), ...s.commands]);
      const texts = await copyableTexts(p.page);
      expect([...texts].sort()).toEqual(blocks.map((b) => b.text).sort());
      expect(blocks.every((b) => b.hasCopyButton)).toBe(true);
      const commands = blocks.filter((b) => !b.label.endsWith('SHA-256'));
      expect(commands).toHaveLength(catalog.releases.length * 6);
      for (const c of commands) expect(md).toContain(c.text); // the page and DOWNLOADS.md give the same commands
      for (let i = 0; i < texts.length; i++) expect(await copyFromButton(p.page, i)).toBe(texts[i]);
    } finally {
      await p.close();
    }
  });

  it('requests nothing but its own file: no fonts, styles or scripts from anywhere', async () => {
    const p = await openPortal(browser, join(bucket, 'index.html'));
    try {
      await openDetails(p.page);
      await p.page.waitForLoadState('networkidle');
      expect(p.requests).toEqual([pathToFileURL(join(bucket, 'index.html')).href]);
      expect(await p.page.$$eval('script[src], link, img, iframe, object, embed', (els) => els.length)).toBe(0);
      // The page's own policy forbids every fetch; its one inline script still ran (the Copy buttons are there).
      expect(await p.page.getAttribute('meta[http-equiv="Content-Security-Policy"]', 'content')).toMatch(/^default-src 'none'; /);
      expect(await p.page.locator('button.copy').count()).toBeGreaterThan(0);
    } finally {
      await p.close();
    }
  });

  it('reads on a 375×740 phone without scrolling sideways, details open or closed', async () => {
    const p = await openPortal(browser, join(bucket, 'index.html'), { width: 375, height: 740 });
    try {
      const closed = await scrollsSideways(p.page);
      expect(closed.innerWidth).toBe(375);
      expect(closed.scrollWidth).toBeLessThanOrEqual(closed.innerWidth);
      await openDetails(p.page);
      const open = await scrollsSideways(p.page);
      expect(open.scrollWidth).toBeLessThanOrEqual(open.innerWidth);
    } finally {
      await p.close();
    }
  });

  it('makes commit-sized screenshots (written to docs/images with LABFORGE_SCREENSHOTS=1)', async () => {
    const shots: [string, { width: number; height: number }][] = [['portal.png', { width: 1000, height: 1000 }], ['portal-phone.png', { width: 375, height: 740 }]];
    for (const [file, size] of shots) {
      const p = await openPortal(browser, join(bucket, 'index.html'), size);
      try {
        // The top of the page with the first release's commands open; on the phone, that release.
        await openDetails(p.page, 'first');
        if (size.width < 500) await p.page.locator('section.rel').first().scrollIntoViewIfNeeded();
        const png = await p.page.screenshot({ fullPage: false });
        expect(png.subarray(1, 4).toString()).toBe('PNG');
        expect(png.length).toBeLessThan(300 * 1024);
        if (process.env.LABFORGE_SCREENSHOTS === '1') {
          mkdirSync(join(repoRoot, 'docs', 'images'), { recursive: true });
          writeFileSync(join(repoRoot, 'docs', 'images', file), png);
        }
      } finally {
        await p.close();
      }
    }
  });

  it('still works after the folder is moved: links resolve and the copied commands run from it', async () => {
    const html = readFileSync(join(bucket, 'index.html'), 'utf8');
    const md = readFileSync(join(bucket, 'DOWNLOADS.md'), 'utf8');
    for (const text of [html, md]) expect(text).not.toContain(work); // nothing of the publisher's path
    const moved = join(work, 'Workshop USB', 'labs');
    mkdirSync(join(work, 'Workshop USB'));
    renameSync(bucket, moved);
    const p = await openPortal(browser, join(moved, 'index.html'));
    try {
      const links = await shownLinks(p.page);
      for (const href of links) {
        expect(href.startsWith(`${pathToFileURL(moved).href}/`)).toBe(true);
        expect(existsSync(fileURLToPath(href))).toBe(true);
      }
      // An attendee copies the cp and the Linux check of a release and runs them from the moved folder.
      const s = (await shownReleases(p.page)).find((x) => x.id === 'demo-lab-standard-1.1.0')!;
      const cp = s.commands.findIndex((c) => c.label === 'cp');
      const linux = s.commands.findIndex((c) => c.label === 'Linux');
      const indexOf = async (text: string) => (await copyableTexts(p.page)).indexOf(text);
      const copied = [await copyFromButton(p.page, await indexOf(s.commands[cp]!.text)), await copyFromButton(p.page, await indexOf(s.commands[linux]!.text))];
      const home = join(work, 'attendee');
      mkdirSync(home);
      const out = execFileSync('sh', ['-c', copied.join('\n')], { cwd: moved, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home }, encoding: 'utf8' });
      expect(out).toBe('demo-lab-standard-1.1.0.ova: OK\n');
      expect(sha256(join(home, 'demo-lab-standard-1.1.0.ova'))).toBe(s.sha256);
    } finally {
      await p.close();
      if (existsSync(moved)) renameSync(moved, bucket);
    }
  });
});
