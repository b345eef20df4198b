/**
 * The download portal: `index.html` (one self-contained page that reads well on a phone) and
 * `DOWNLOADS.md`, generated from the catalog (`index.json`) and published at the prefix root.
 *
 * Releases are grouped by appliance (`hedgehog-lab`, `demo-lab`, …): two appliances can publish the same
 * version and build type, and a reader must never mistake one for the other. Every release gets its
 * appliance, build type, size, date, a download link, its SHA-256, resume-friendly download commands
 * (curl -C -, wget -c, aria2c; rsync for a directory) and verification commands for Linux, macOS and Windows, its SBOM when it has one,
 * under a short "which build should I pick" section. Every command has a copy button (a small inline script,
 * allowed by the page's Content-Security-Policy by its hash; the page loads nothing from anywhere).
 *
 * A directory destination (`file:///DIR`) is a folder that is copied to USB disks and mounted on shares at any
 * path: its links and its commands are relative to the portal's folder (commands are run from there), never the
 * publisher's absolute paths.
 */
import { createHash } from 'node:crypto';
import { powershellQuote, shellQuote } from './escape.js';
import type { ArtifactStore } from './artifact-store.js';
import { CATALOG_KEY, readCatalog, sortReleases, type Catalog, type CatalogRelease, type SbomReference } from './release-catalog.js';
import { formatBytes } from './transfer-progress.js';

export const PORTAL_HTML_KEY = 'index.html';
export const PORTAL_MARKDOWN_KEY = 'DOWNLOADS.md';

/** Where each release's files can be downloaded from. */
export interface ReleaseLinks {
  /** Link for the page (relative for directories and public buckets, absolute when signed). */
  href: string;
  /** Absolute URL for the command lines (a bucket's; a directory's commands use {@link folder} instead). */
  url: string;
  sha256Href: string;
  sha256Url: string;
  /** Set when the link expires (signed URLs). */
  expires?: string;
  /** Link to the release's SBOM, when it has one. */
  sbomHref?: string;
  /**
   * Set for a directory destination: the files' paths relative to the portal's folder (keys). The commands
   * are then run from that folder and copy the files to the home directory, so they work from any mount point.
   */
  folder?: { path: string; sha256Path: string };
}

export interface PortalOptions {
  title?: string;
  /** Make V4 signed URLs valid this many hours instead of plain links (GCS only). */
  signedUrlHours?: number;
  log?: (line: string) => void;
}

export interface PortalResult {
  htmlUri: string;
  markdownUri: string;
  releases: number;
}

const PICK_TEXT = {
  standard: 'Self-paced learning. Smaller to keep around; the lab is initialized on the first boot, which takes longer once.',
  prewarmed: 'Workshops and classes. The lab was initialized at build time, so the first boot only resumes it and everyone starts at the same moment.',
};

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** A key as a relative URL reference: each path segment percent-encoded. */
export function keyHref(key: string): string {
  return key.split('/').map(encodeURIComponent).join('/');
}

/** What a command run in the portal's folder says about where it runs. */
export const FOLDER_NOTE = 'Run these in a terminal from the folder that holds this page (cd to it first); they copy the files to your home directory.';

/**
 * Download commands; every name, path and URL in them is quoted for its shell. For a bucket: curl, wget and
 * aria2c on the URL, all resuming an interrupted transfer. For a directory: paths relative to the portal's
 * folder (rsync resumes; cp; PowerShell's Copy-Item), copying the file and its `.sha256` to the home directory.
 */
export function downloadCommands(r: CatalogRelease, links: ReleaseLinks): { label: string; command: string }[] {
  if (links.folder) {
    const { path, sha256Path } = links.folder;
    const win = (p: string) => powershellQuote(p.replace(/\//g, '\\'));
    return [
      { label: 'rsync (resumes an interrupted copy)', command: `rsync --partial --append-verify --progress ${shellQuote(path)} ${shellQuote(sha256Path)} ~/` },
      { label: 'cp', command: `cp ${shellQuote(path)} ${shellQuote(sha256Path)} ~/` },
      { label: 'Windows (PowerShell)', command: `Copy-Item -LiteralPath ${win(path)}, ${win(sha256Path)} -Destination $HOME` },
    ];
  }
  const name = shellQuote(r.name);
  return [
    { label: 'curl', command: `curl -fL -C - -o ${name} ${shellQuote(links.url)}` },
    { label: 'wget', command: `wget -c -O ${name} ${shellQuote(links.url)}` },
    { label: 'aria2c (parallel)', command: `aria2c -c -x 8 -s 8 -o ${name} ${shellQuote(links.url)}` },
  ];
}

/**
 * Commands that check a downloaded file against its SHA-256; names and URLs quoted for their shell. For a
 * directory they check the copies that {@link downloadCommands} put in the home directory.
 */
export function verifyCommands(r: CatalogRelease, links: ReleaseLinks): { label: string; command: string }[] {
  const sumFile = shellQuote(`${r.name}.sha256`);
  const expected = powershellQuote(r.sha256);
  if (links.folder) {
    return [
      { label: 'Linux', command: `cd ~ && sha256sum -c ${sumFile}` },
      { label: 'macOS', command: `cd ~ && shasum -a 256 -c ${sumFile}` },
      { label: 'Windows (PowerShell)', command: `(Get-FileHash -LiteralPath (Join-Path $HOME ${powershellQuote(r.name)}) -Algorithm SHA256).Hash -eq ${expected}` },
    ];
  }
  return [
    { label: 'Linux', command: `curl -fL -o ${sumFile} ${shellQuote(links.sha256Url)} && sha256sum -c ${sumFile}` },
    { label: 'macOS', command: `shasum -a 256 -c ${sumFile}` },
    { label: 'Windows (PowerShell)', command: `(Get-FileHash -LiteralPath ${powershellQuote(`.\\${r.name}`)} -Algorithm SHA256).Hash -eq ${expected}` },
  ];
}

/** How the portal names an SBOM: `SBOM (CycloneDX 1.6, 412 packages)`. */
export function sbomLabel(sbom: SbomReference): string {
  return `SBOM (${sbom.format}, ${sbom.components} ${sbom.components === 1 ? 'package' : 'packages'})`;
}

function releaseDate(r: CatalogRelease): string {
  return (r.buildDate || r.publishedAt || '').slice(0, 10);
}

/** The releases of each appliance, appliances by name, each newest first. */
export function releasesByAppliance(catalog: Catalog): { appliance: string; releases: CatalogRelease[] }[] {
  const groups: { appliance: string; releases: CatalogRelease[] }[] = [];
  for (const r of sortReleases(catalog.releases)) {
    const last = groups[groups.length - 1];
    if (last?.appliance === r.appliance) last.releases.push(r);
    else groups.push({ appliance: r.appliance, releases: [r] });
  }
  return groups;
}

const STYLE = `:root{color-scheme:light dark;--fg:#1b1f24;--bg:#fff;--mut:#57606a;--box:#f6f8fa;--acc:#0969da}
@media (prefers-color-scheme:dark){:root{--fg:#e6edf3;--bg:#0d1117;--mut:#8d96a0;--box:#161b22;--acc:#4493f8}}
body{font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg);margin:0 auto;max-width:52rem;padding:1rem;overflow-wrap:break-word}
h1{font-size:1.5rem;margin:.5rem 0}h2{font-size:1.3rem;margin:1.2rem 0 .2rem}h3{font-size:1.15rem;margin:.2rem 0}
.app{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-weight:600}
a{color:var(--acc)}.dl{display:inline-block;max-width:100%;box-sizing:border-box;padding:.5rem .9rem;border-radius:.4rem;background:var(--acc);color:#fff;text-decoration:none;font-weight:600;margin:.3rem 0}
.rel{border:1px solid var(--box);border-radius:.6rem;padding:.8rem;margin:1rem 0;background:var(--box)}
.meta,.lbl,.exp{color:var(--mut);font-size:.9rem;margin:.2rem 0}
.badge{white-space:nowrap;font-size:.75rem;padding:.1rem .5rem;border-radius:1rem;border:1px solid var(--mut);vertical-align:middle}
.badge.prewarmed{border-color:#bf8700;color:#bf8700}.badge.standard{border-color:#1a7f37;color:#1a7f37}
pre{background:var(--bg);padding:.5rem;border-radius:.3rem;overflow-x:auto;white-space:pre-wrap;word-break:break-all;font-size:.85rem;margin:.2rem 0 .6rem}
.copy{margin-left:.5rem;font:inherit;font-size:.8rem;padding:0 .5rem;border:1px solid var(--mut);border-radius:.3rem;background:var(--bg);color:var(--fg);cursor:pointer}
summary{cursor:pointer;margin:.4rem 0}table{border-collapse:collapse}td{padding:.2rem .6rem .2rem 0;vertical-align:top}`;

/**
 * Puts a Copy button on the label of every `pre.cmd`; it copies the block's exact text (the clipboard API, or
 * a selected text area where the page is not a secure context). Without scripts the page still shows all text.
 */
const SCRIPT = `"use strict";
function copyText(t){if(navigator.clipboard&&window.isSecureContext)return navigator.clipboard.writeText(t);
return new Promise(function(ok,fail){var a=document.createElement("textarea");a.value=t;a.setAttribute("readonly","");a.style.position="fixed";a.style.opacity="0";document.body.appendChild(a);a.select();var done=document.execCommand("copy");a.remove();if(done)ok();else fail(new Error("copy refused"));});}
document.querySelectorAll("pre.cmd").forEach(function(pre){var b=document.createElement("button");b.type="button";b.className="copy";b.textContent="Copy";
b.setAttribute("aria-label","Copy: "+pre.previousElementSibling.textContent);
b.addEventListener("click",function(){copyText(pre.textContent).then(function(){b.textContent="Copied";},function(){b.textContent="Select it and copy";});setTimeout(function(){b.textContent="Copy";},2000);});
pre.previousElementSibling.appendChild(b);});`;

const cspHash = (text: string) => `'sha256-${createHash('sha256').update(text).digest('base64')}'`;

/** The page's policy: nothing is fetched from anywhere; only its own style and script (by hash) apply. */
export const PORTAL_CSP = `default-src 'none'; style-src ${cspHash(STYLE)}; script-src ${cspHash(SCRIPT)}; base-uri 'none'; form-action 'none'`;

/** A labelled block of text with a Copy button (added by the page's script). */
function copyBlock(label: string, text: string, cls = ''): string {
  return `<p class="lbl">${escapeHtml(label)}</p><pre class="${cls ? `${cls} ` : ''}cmd">${escapeHtml(text)}</pre>`;
}

/** Renders the single-page HTML portal: one section per appliance, one card per release. */
export function renderPortalHtml(catalog: Catalog, links: Map<CatalogRelease, ReleaseLinks>, opts: { title?: string } = {}): string {
  const title = opts.title ?? 'Hedgehog lab appliance downloads';
  const groups = releasesByAppliance(catalog);
  const card = (r: CatalogRelease) => {
    const l = links.get(r)!;
    const where = l.folder ? `<p class="meta">${escapeHtml(FOLDER_NOTE)}</p>` : '';
    const cmds = downloadCommands(r, l).map((c) => copyBlock(c.label, c.command)).join('');
    const checks = verifyCommands(r, l).map((c) => copyBlock(c.label, c.command)).join('');
    const sbom = r.sbom && l.sbomHref
      ? `<p><a class="sbom" href="${escapeHtml(l.sbomHref)}">${escapeHtml(sbomLabel(r.sbom))}</a> <span class="meta">${escapeHtml(formatBytes(r.sbom.size))}</span></p>${copyBlock('SBOM SHA-256', r.sbom.sha256, 'sum')}`
      : '';
    return `<section class="rel" id="${escapeHtml(`${r.appliance}-${r.buildType}-${r.version}`)}">
<h3><span class="app">${escapeHtml(r.appliance)}</span> v${escapeHtml(r.version)} <span class="badge ${escapeHtml(r.buildType)}">${r.buildType === 'prewarmed' ? 'pre-warmed' : 'standard'}</span></h3>
<p class="meta"><span class="size">${escapeHtml(formatBytes(r.size))}</span> · built ${escapeHtml(releaseDate(r))} · first boot ${escapeHtml(r.firstBoot)}${r.gitSha ? ` · <code>${escapeHtml(r.gitSha.slice(0, 12))}</code>` : ''}</p>
<p><a class="dl" href="${escapeHtml(l.href)}">Download ${escapeHtml(r.name)}</a> <a class="sha" href="${escapeHtml(l.sha256Href)}">.sha256</a>${l.expires ? ` <span class="exp">link valid until ${escapeHtml(l.expires)}</span>` : ''}</p>
${copyBlock('SHA-256', r.sha256, 'sum')}
${sbom}<details><summary>Download commands (resume after an interruption)</summary>${where}${cmds}</details>
<details><summary>Verify the download</summary>${where}${checks}</details>
</section>`;
  };
  const sections = groups
    .map((g) => `<h2 class="appliance" id="${escapeHtml(g.appliance)}">${escapeHtml(g.appliance)}</h2>\n<p class="meta">${g.releases.length} release(s) of the ${escapeHtml(g.appliance)} appliance</p>\n${g.releases.map(card).join('\n')}`)
    .join('\n');
  const contents = groups.length > 1 ? `<p class="meta">Appliances: ${groups.map((g) => `<a href="#${escapeHtml(g.appliance)}">${escapeHtml(g.appliance)}</a>`).join(' · ')}</p>\n` : '';
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${escapeHtml(PORTAL_CSP)}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>${STYLE}</style>
</head>
<body>
<h1>${escapeHtml(title)}</h1>
<p class="meta">${catalog.releases.length} release(s) · catalog updated ${escapeHtml(catalog.updated.slice(0, 16).replace('T', ' '))} UTC · <a href="${CATALOG_KEY}">index.json</a></p>
<h2>Which build should I pick?</h2>
<table>
<tr><td><span class="badge standard">standard</span></td><td>${escapeHtml(PICK_TEXT.standard)}</td></tr>
<tr><td><span class="badge prewarmed">pre-warmed</span></td><td>${escapeHtml(PICK_TEXT.prewarmed)}</td></tr>
</table>
<p class="meta">Downloads are large: use a command below that resumes, and check the SHA-256 before importing the OVA.</p>
${contents}${sections || '<p>No releases have been published yet.</p>'}
<script>${SCRIPT}</script>
</body>
</html>
`;
}

/** Renders DOWNLOADS.md with the same content: a table naming each release's appliance, then one section per appliance. */
export function renderDownloadsMarkdown(catalog: Catalog, links: Map<CatalogRelease, ReleaseLinks>, opts: { title?: string } = {}): string {
  const title = opts.title ?? 'Hedgehog lab appliance downloads';
  const groups = releasesByAppliance(catalog);
  const releases = groups.flatMap((g) => g.releases);
  const lines = [
    `# ${title}`,
    '',
    '## Which build should I pick?',
    '',
    `- **standard**: ${PICK_TEXT.standard}`,
    `- **pre-warmed**: ${PICK_TEXT.prewarmed}`,
    '',
    '## Releases',
    '',
    '| appliance | version | build | size | built | download | SHA-256 |',
    '|---|---|---|---|---|---|---|',
    ...releases.map((r) => {
      const l = links.get(r)!;
      return `| ${r.appliance} | v${r.version} | ${r.buildType} | ${formatBytes(r.size)} | ${releaseDate(r)} | [${r.name}](${l.href}) | \`${r.sha256}\` |`;
    }),
    '',
  ];
  for (const g of groups) {
    lines.push(`## ${g.appliance}`, '');
    for (const r of g.releases) {
      const l = links.get(r)!;
      lines.push(`### ${r.appliance} v${r.version} ${r.buildType}`, '', `First boot: ${r.firstBoot}.${l.expires ? ` The links are valid until ${l.expires}.` : ''}`, '');
      if (r.sbom && l.sbomHref) lines.push(`[${sbomLabel(r.sbom)}](${l.sbomHref}), ${formatBytes(r.sbom.size)}, SHA-256 \`${r.sbom.sha256}\``, '');
      lines.push(`Download (resumes after an interruption)${l.folder ? `. ${FOLDER_NOTE.replace('this page', 'this file')}` : ':'}`, '', '```sh');
      for (const c of downloadCommands(r, l)) lines.push(`# ${c.label}`, c.command);
      lines.push('```', '', 'Verify:', '', '```sh');
      for (const c of verifyCommands(r, l)) lines.push(`# ${c.label}`, c.command);
      lines.push('```', '');
    }
  }
  if (releases.length === 0) lines.push('No releases have been published yet.', '');
  return lines.join('\n');
}

/**
 * Links for every release: signed URLs when asked (GCS); else links relative to the portal on the page, the
 * public URLs in the commands (GCS), or paths relative to the portal's folder in the commands (directories).
 */
export async function releaseLinks(store: ArtifactStore, catalog: Catalog, signedUrlHours?: number): Promise<Map<CatalogRelease, ReleaseLinks>> {
  const out = new Map<CatalogRelease, ReleaseLinks>();
  for (const r of catalog.releases) {
    if (signedUrlHours && store.signedUrl) {
      const url = await store.signedUrl(r.key, signedUrlHours);
      const sha = await store.signedUrl(r.sha256Key, signedUrlHours);
      const sbomHref = r.sbom ? await store.signedUrl(r.sbom.key, signedUrlHours) : undefined;
      out.set(r, { href: url, url, sha256Href: sha, sha256Url: sha, expires: new Date(Date.now() + signedUrlHours * 3600_000).toISOString().slice(0, 16).replace('T', ' ') + ' UTC', ...(sbomHref ? { sbomHref } : {}) });
    } else {
      out.set(r, {
        href: keyHref(r.key),
        url: store.url(r.key),
        sha256Href: keyHref(r.sha256Key),
        sha256Url: store.url(r.sha256Key),
        ...(r.sbom ? { sbomHref: keyHref(r.sbom.key) } : {}),
        ...(store.kind === 'file' ? { folder: { path: r.key, sha256Path: r.sha256Key } } : {}),
      });
    }
  }
  return out;
}

/** Generates index.html and DOWNLOADS.md from the destination's catalog and publishes them at its root. */
export async function publishPortal(store: ArtifactStore, opts: PortalOptions = {}): Promise<PortalResult> {
  const { catalog } = await readCatalog(store);
  const links = await releaseLinks(store, catalog, opts.signedUrlHours);
  const html = renderPortalHtml(catalog, links, opts);
  const md = renderDownloadsMarkdown(catalog, links, opts);
  await store.writeSmall(PORTAL_HTML_KEY, Buffer.from(html), { contentType: 'text/html; charset=utf-8', cacheControl: 'no-cache, max-age=0' });
  await store.writeSmall(PORTAL_MARKDOWN_KEY, Buffer.from(md), { contentType: 'text/markdown; charset=utf-8', cacheControl: 'no-cache, max-age=0' });
  opts.log?.(`portal: ${store.uri(PORTAL_HTML_KEY)} and ${store.uri(PORTAL_MARKDOWN_KEY)} list ${catalog.releases.length} release(s)`);
  return { htmlUri: store.uri(PORTAL_HTML_KEY), markdownUri: store.uri(PORTAL_MARKDOWN_KEY), releases: catalog.releases.length };
}
