/**
 * The download portal in a real browser: Debian's headless Chromium driven by playwright-core. Opens a
 * published `index.html` from its file:// folder, records every request the page makes, and reads back what a
 * visitor sees: each release's name, size, build type, SHA-256, the links (resolved by the browser) and the
 * commands with their Copy buttons.
 */
import { existsSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

// The few DOM shapes the in-page functions below use: this project compiles without the DOM lib, and these
// functions run in Chromium, not in Node. Declared here, they stay local to this module.
interface El {
  id: string;
  textContent: string | null;
  href: string;
  open: boolean;
  previousElementSibling: El | null;
  querySelector(selector: string): El | null;
  querySelectorAll(selector: string): ArrayLike<El> & Iterable<El> & { forEach(f: (e: El) => void): void };
  cloneNode(deep: boolean): El;
  remove(): void;
}
declare const document: { documentElement: { scrollWidth: number }; querySelectorAll: El['querySelectorAll'] };
declare const window: { innerWidth: number };
declare const navigator: { clipboard: { writeText(text: string): Promise<void>; readText(): Promise<string> } };

/** Starts headless Chromium (we may run as root: no sandbox). Close it in afterAll. */
export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: install Debian's chromium package (apt-get install chromium)`);
  return chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'], timeout: 30_000 });
}

export interface PortalPage {
  context: BrowserContext;
  page: Page;
  /** Every URL the page requested, the page itself included, in order. */
  requests: string[];
  close(): Promise<void>;
}

/** Opens `htmlFile` in a fresh context (own clipboard permissions, viewport) and records its requests. */
export async function openPortal(browser: Browser, htmlFile: string, opts: { width?: number; height?: number } = {}): Promise<PortalPage> {
  const context = await browser.newContext({ viewport: { width: opts.width ?? 1100, height: opts.height ?? 900 }, colorScheme: 'light' });
  await context.grantPermissions(['clipboard-read', 'clipboard-write']);
  const requests: string[] = [];
  context.on('request', (req) => requests.push(req.url()));
  const page = await context.newPage();
  page.setDefaultTimeout(10_000);
  await page.goto(pathToFileURL(htmlFile).href, { waitUntil: 'load' });
  return { context, page, requests, close: () => context.close() };
}

/** A command block as shown: its label (without the button) and its exact text. */
export interface ShownCommand {
  label: string;
  text: string;
  /** Whether a Copy button sits on its label. */
  hasCopyButton: boolean;
}

/** One release card as a visitor sees it. */
export interface ShownRelease {
  id: string;
  /** The download button's text, `Download NAME`. */
  download: string;
  /** The badge: `standard` or `pre-warmed`. */
  buildType: string;
  size: string;
  sha256: string;
  /** Links as the browser resolved them (absolute URLs). */
  href: string;
  sha256Href: string;
  sbom?: { label: string; href: string; sha256: string };
  commands: ShownCommand[];
}

/** Reads every release card of the open portal. */
export async function shownReleases(page: Page): Promise<ShownRelease[]> {
  return page.$$eval('section.rel', (sections: El[]) =>
    sections.map((s) => {
      const label = (pre: El) => {
        const lbl = pre.previousElementSibling!;
        const clone = lbl.cloneNode(true);
        clone.querySelectorAll('button').forEach((b) => b.remove());
        return { label: (clone.textContent ?? '').trim(), hasCopyButton: lbl.querySelector('button.copy') !== null };
      };
      const blocks = [...s.querySelectorAll('pre.cmd')].map((pre) => ({ ...label(pre), text: pre.textContent ?? '' }));
      const sbomLink = s.querySelector('a.sbom');
      const sbomSum = blocks.find((b) => b.label === 'SBOM SHA-256');
      return {
        id: s.id,
        download: s.querySelector('a.dl')?.textContent ?? '',
        buildType: s.querySelector('.badge')?.textContent ?? '',
        size: s.querySelector('.size')?.textContent ?? '',
        sha256: blocks.find((b) => b.label === 'SHA-256')?.text ?? '',
        href: s.querySelector('a.dl')?.href ?? '',
        sha256Href: s.querySelector('a.sha')?.href ?? '',
        ...(sbomLink ? { sbom: { label: sbomLink.textContent ?? '', href: sbomLink.href, sha256: sbomSum?.text ?? '' } } : {}),
        commands: blocks.filter((b) => b.label !== 'SHA-256' && b.label !== 'SBOM SHA-256'),
      };
    }),
  );
}

/** Every link on the page, resolved by the browser (in-page anchors left out). */
export async function shownLinks(page: Page): Promise<string[]> {
  return page.$$eval('a[href]', (as: El[]) => as.map((a) => a.href).filter((h) => !h.includes('#')));
}

/** The exact text of every copyable block (`pre.cmd`), in page order. */
export async function copyableTexts(page: Page): Promise<string[]> {
  return page.$$eval('pre.cmd', (pres: El[]) => pres.map((pre) => pre.textContent ?? ''));
}

/** Opens every `<details>` (download and verify commands), or only the first one. */
export async function openDetails(page: Page, which: 'all' | 'first' = 'all'): Promise<void> {
  await page.evaluate((all) => {
    const details = [...document.querySelectorAll('details')];
    for (const d of all ? details : details.slice(0, 1)) d.open = true;
  }, which === 'all');
}

/**
 * Clicks the Copy button of the `index`-th command block (details opened first) and returns what the
 * clipboard then holds, read back through the page's clipboard API.
 */
export async function copyFromButton(page: Page, index: number): Promise<string> {
  await openDetails(page);
  await page.evaluate(() => navigator.clipboard.writeText('(clipboard not written)'));
  const button = page.locator('pre.cmd').nth(index).locator('xpath=preceding-sibling::p[1]').locator('button.copy');
  await button.click();
  await page.waitForFunction((b) => b?.textContent !== 'Copy', await button.elementHandle(), { timeout: 5_000 });
  return page.evaluate(() => navigator.clipboard.readText());
}

/** Whether the page scrolls sideways at its current viewport. */
export async function scrollsSideways(page: Page): Promise<{ scrollWidth: number; innerWidth: number }> {
  return page.evaluate(() => ({ scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth }));
}
