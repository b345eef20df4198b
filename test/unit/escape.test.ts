/**
 * The one escaper for outside text (actions/lib/escape.ts): log lines and multi-line output can never carry a
 * workflow command or a terminal escape, annotations stay on one line, and copy-paste commands quote every
 * name and URL. The quoting is proven by running the commands in a real `sh` with the tools stubbed.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { annotationText, escapeCommandData, logLines, logText, printable, shellQuote } from '../../actions/lib/escape.js';
import { downloadCommands, renderDownloadsMarkdown, renderPortalHtml, verifyCommands, type ReleaseLinks } from '../../actions/lib/download-portal.js';
import type { CatalogRelease } from '../../actions/lib/release-catalog.js';
import { renderReleaseNotes } from '../../actions/lib/release-notes.js';
import { checkName, InputError, inputsFrom, readName } from '../../actions/lib/inputs.js';

/** What the runner would execute: a line that starts with `::` after white space, or holds `##[`. */
function runnerCommandLines(text: string): string[] {
  return text.split(/\r\n|\r|\n/).filter((l) => /^\s*::/.test(l) || l.includes('##['));
}

// eslint-disable-next-line no-control-regex
const RAW_CONTROL = /[\x00-\x08\x0b-\x1f\x7f-\x9f]/;

describe('text for a log line (printable)', () => {
  it('turns a newline followed by ::error:: into one harmless line', () => {
    const out = printable('bob\n::error::pwned');
    expect(out).toBe('bob\\u000a::error::pwned');
    expect(out).not.toContain('\n');
    expect(runnerCommandLines(out)).toEqual([]);
  });

  it('neutralizes a value that itself starts with ::, after leading white space too', () => {
    expect(printable('::add-mask::x')).toBe('\\u003a:add-mask::x');
    expect(printable('  ::stop-commands::tok')).toBe('  \\u003a:stop-commands::tok');
    expect(runnerCommandLines(printable(' \t::warning::x'))).toEqual([]);
  });

  it('breaks the legacy ##[command] form anywhere in the line', () => {
    expect(printable('see ##[error]boom')).toBe('see ##\\u005berror]boom');
  });

  it('makes CR, ESC]0;…BEL, C1 and DEL visible', () => {
    expect(printable('a\rb')).toBe('a\\u000db');
    expect(printable('\x1b]0;owned title\x07')).toBe('\\u001b]0;owned title\\u0007');
    expect(printable('x\u009b31my\x7f')).toBe('x\\u009b31my\\u007f');
    expect(printable('\x1b[2J\x00')).not.toMatch(RAW_CONTROL);
  });

  it('leaves plain text, TAB, % and other Unicode as they are', () => {
    for (const plain of ['hedgehog-lab-standard-1.4.0.ova', '50% done', 'a\tb', 'host::port', 'ünïcødé → ✓', 'gs://bucket/labs']) expect(printable(plain)).toBe(plain);
  });

  it('cuts long values with an ellipsis', () => {
    expect(printable('x'.repeat(10), 4)).toBe('xxxx…');
  });
});

describe('multi-line output (logText, logLines)', () => {
  it('escapes each line of guest or Packer output; none can start a command', () => {
    const guest = 'ok\n::error title=x::pwned\r::set-output name=a::b\r\n  ::add-mask::s\n\x1b]0;t\x07done\n';
    const lines = logLines(guest);
    expect(lines).toEqual(['ok', '\\u003a:error title=x::pwned', '\\u003a:set-output name=a::b', '  \\u003a:add-mask::s', '\\u001b]0;t\\u0007done', '']);
    const text = logText(guest);
    expect(runnerCommandLines(text)).toEqual([]);
    expect(text).not.toMatch(RAW_CONTROL);
    expect(text).not.toContain('\r');
  });

  it('keeps the line structure and plain text unchanged', () => {
    const report = 'Probes:\n  ok   tcp   3 ms\n\tindented\n\nVerdict in 12 ms.\n';
    expect(logText(report)).toBe(report);
  });

  it('keeps JSON valid and equal in value', () => {
    const value = { a: '\u009b##[error]x', b: ['::warning::y', '\x7f'] };
    const escaped = logText(JSON.stringify(value, null, 2));
    expect(runnerCommandLines(escaped)).toEqual([]);
    expect(escaped).not.toMatch(RAW_CONTROL);
    expect(JSON.parse(escaped)).toEqual(value);
  });

  it('is idempotent: escaping escaped text changes nothing (the escapes hold no trigger)', () => {
    const nasty = 'a\n::error::b\r##[warning]c\x1b[31m\u0085\n';
    expect(logText(logText(nasty))).toBe(logText(nasty));
    expect(printable(printable(nasty))).toBe(printable(nasty));
  });
});

describe('annotation messages', () => {
  it('keeps line breaks for the toolkit to encode, makes other controls visible', () => {
    expect(annotationText('a\nb\x1b]0;x\x07\tc')).toBe('a\nb\\u001b]0;x\\u0007\tc');
  });

  it("encodes %, CR and LF as the toolkit's escapeData does", () => {
    expect(escapeCommandData('50%\r\n::error::x')).toBe('50%25%0D%0A::error::x');
    expect(escapeCommandData(annotationText('bob\n::error::pwned'))).not.toContain('\n');
  });
});

describe('name inputs', () => {
  it('refuses a line break or a control character, naming the input', () => {
    expect(() => readName(inputsFrom({ username: 'bob\n::error::pwned' }), 'username')).toThrow(InputError);
    expect(() => readName(inputsFrom({ username: 'bob\n::error::pwned' }), 'username')).toThrow(/^username: 'bob\\u000a::error::pwned' contains a line break \(/);
    expect(() => checkName('v1\x1b[2J', 'tag')).toThrow(/^tag: .* contains the control character \\u001b/);
    expect(() => checkName('lab\tuser', 'ssh-user')).toThrow(/^ssh-user: /);
  });

  it('takes an ordinary name and the fallback', () => {
    expect(readName(inputsFrom({ host: ' 10.0.0.7 ' }), 'host')).toBe('10.0.0.7');
    expect(readName(inputsFrom({}), 'ssh-user', 'lab')).toBe('lab');
  });
});

describe('copy-paste commands', () => {
  let dir: string;
  let marker: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'labforge-escape-'));
    marker = join(dir, 'pwned');
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** A file name that runs a command if it is not quoted, and breaks naive single quoting. */
  const evilName = () => `lab-1.0.0$(touch ${marker})'x\`touch ${marker}\`.ova`;

  /** Runs command lines in sh with the download and checksum tools stubbed to print their arguments. */
  function runStubbed(commands: string[]): string[] {
    const stubs = ['curl', 'wget', 'aria2c', 'rsync', 'cp', 'sha256sum', 'shasum', 'labforge', 'gh'].map((t) => `${t}() { printf '%s\\n' "$@"; }`).join('\n');
    const out = execFileSync('sh', ['-c', `${stubs}\n${commands.join('\n')}`], { cwd: dir, encoding: 'utf8' });
    return out.split('\n');
  }

  function release(name: string, url: string): { r: CatalogRelease; links: ReleaseLinks } {
    const r = { appliance: 'demo-lab', version: '1.0.0', buildType: 'standard', tag: 'v1.0.0', name, sha256: 'a'.repeat(64), firstBoot: 'about a minute', buildDate: '2026-01-01T00:00:00Z', publishedAt: '' } as unknown as CatalogRelease;
    // A directory's commands use paths relative to the portal's folder (here the release sits at its root).
    const folder = url.startsWith('file:') ? { folder: { path: name, sha256Path: `${name}.sha256` } } : {};
    return { r, links: { href: name, url, sha256Href: `${name}.sha256`, sha256Url: `${url}.sha256`, ...folder } };
  }

  it('shellQuote leaves plain words bare and quotes everything else', () => {
    expect(shellQuote('hedgehog-lab-standard-1.4.0.ova')).toBe('hedgehog-lab-standard-1.4.0.ova');
    expect(shellQuote("it's $(x)")).toBe(`'it'\\''s $(x)'`);
  });

  it('the portal and DOWNLOADS.md quote every file name and URL (http and file://)', () => {
    const name = evilName();
    for (const url of [`https://storage.example/labs/${encodeURIComponent(name)}?sig=a'b&x=$(touch ${marker})`, `file://${dir}/${name}`]) {
      const { r, links } = release(name, url);
      const commands = [...downloadCommands(r, links), ...verifyCommands(r, links)].filter((c) => !c.label.startsWith('Windows')).map((c) => c.command);
      const args = runStubbed(commands);
      expect(existsSync(marker)).toBe(false);
      expect(args).toContain(name);
      expect(args).toContain(`${name}.sha256`);
      if (url.startsWith('https:')) expect(args).toContain(url);
      const md = renderDownloadsMarkdown({ schema: 1, updated: '', releases: [r] }, new Map([[r, links]]));
      for (const c of commands) expect(md).toContain(c);
      const html = renderPortalHtml({ schema: 1, updated: '', releases: [r] }, new Map([[r, links]]));
      expect(html).not.toContain(`$(touch ${marker})'x`);
      const ps = verifyCommands(r, links).find((c) => c.label.startsWith('Windows'))!.command;
      expect(ps).toContain(url.startsWith('file:') ? `(Join-Path $HOME '${name.replace(/'/g, "''")}')` : `'.\\${name.replace(/'/g, "''")}'`);
      const winPath = name.replace(/'/g, "''").replace(/\//g, '\\'); // PowerShell paths take backslashes
      if (url.startsWith('file:')) expect(downloadCommands(r, links).find((c) => c.label.startsWith('Windows'))!.command).toBe(`Copy-Item -LiteralPath '${winPath}', '${winPath}.sha256' -Destination $HOME`);
    }
    expect(readdirSync(dir)).toEqual([]);
  });

  it('the release notes quote the file name and the URL', () => {
    const name = evilName();
    const url = `https://storage.example/o?sig=a'b&c=$(touch ${marker})`;
    const notes = renderReleaseNotes({ appliance: 'demo-lab', buildType: 'standard', version: '1.0.0', fileName: name, sha256: 'b'.repeat(64), firstBoot: 'about a minute', downloadUrl: url });
    const bash = [...notes.matchAll(/```bash\n([\s\S]*?)```/g)].flatMap((m) => m[1]!.trim().split('\n'));
    // curl, sha256sum, shasum, labforge verify (no attestation here: no gh line)
    expect(bash.length).toBe(4);
    const args = runStubbed(bash.map((l) => l.replace(/\s+# (Linux|macOS)$/, '')));
    expect(existsSync(marker)).toBe(false);
    expect(args).toEqual(expect.arrayContaining(['-fL', '-C', '-', '-o', name, url, '-c', `${name}.sha256`]));
    expect(notes).toContain(`(Get-FileHash -LiteralPath '${name.replace(/'/g, "''")}' -Algorithm SHA256).Hash`);
    // With provenance: the gh line quotes the file name and the repository as well.
    const attested = renderReleaseNotes({ appliance: 'demo-lab', buildType: 'standard', version: '1.0.0', fileName: name, sha256: 'b'.repeat(64), firstBoot: 'about a minute', downloadUrl: url, attestationRepo: `o/r$(touch ${marker})` });
    const ghLine = [...attested.matchAll(/```bash\n([\s\S]*?)```/g)].flatMap((m) => m[1]!.trim().split('\n')).filter((l) => l.startsWith('gh '));
    expect(ghLine).toHaveLength(1);
    expect(runStubbed(ghLine)).toEqual(expect.arrayContaining(['attestation', 'verify', name, '--repo', `o/r$(touch ${marker})`]));
    expect(existsSync(marker)).toBe(false);
  });
});
