/**
 * `labforge pin`: pins the workflows that call labforge to the commit a ref (normally the moving major tag
 * `v1`) names now. A pin line names the ref it was resolved from in a comment, so the same command moves it
 * again later:
 *
 *   uses: OWNER/labforge/.github/workflows/build.yml@<40-hex commit> # v1
 *   labforge_ref: <40-hex commit> # v1
 *
 * The ref is resolved with git (`git rev-parse` in a local repository, `git ls-remote` for a remote), run
 * through execFile with an argument vector, never a shell. Rewriting is idempotent; a file without a pin
 * line for the ref is refused.
 */
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Command } from '../command.js';
import { InputError, readRequired, readString } from '../../actions/lib/inputs.js';

/** A rewritten (or already current) pin line. */
export interface PinLine {
  /** 1-based line number. */
  line: number;
  kind: 'uses' | 'labforge_ref';
  /** The commit (or whatever) the line named before. */
  from: string;
  /** The commit it names now. */
  to: string;
}

/** `uses: <owner>/labforge/<path>@<anything> # <ref>`, optionally quoted, optionally a list item. */
const USES_PIN = /^(\s*(?:-\s+)?uses:\s*)(["']?)([A-Za-z0-9][A-Za-z0-9_.-]*\/labforge\/[^\s@"']+)@([^\s"'#]*)\2(\s+#\s*)(\S+)(\s*)$/;
/** `labforge_ref: <anything> # <ref>`, optionally quoted. */
const REF_PIN = /^(\s*labforge_ref:\s*)(["']?)([^\s"'#]*)\2(\s+#\s*)(\S+)(\s*)$/;

const FULL_SHA = /^[0-9a-f]{40}$/;

/** What a ref may look like here: a tag, branch or `HEAD` (no option-like or revision-expression syntax). */
const REF_NAME = /^(?!-)(?!.*\.\.)[A-Za-z0-9._/-]+$/;

/**
 * Points every pin line for `ref` in a workflow's text at `sha`. Returns the new text and every pin line
 * (`from === to` where it already named `sha`).
 */
export function pinText(text: string, ref: string, sha: string): { text: string; pins: PinLine[] } {
  const pins: PinLine[] = [];
  const lines = text.split('\n').map((raw, i) => {
    const uses = USES_PIN.exec(raw);
    if (uses && uses[6] === ref) {
      const [, lead = '', q = '', target = '', from = '', hash = '', , tail = ''] = uses;
      pins.push({ line: i + 1, kind: 'uses', from, to: sha });
      return `${lead}${q}${target}@${sha}${q}${hash}${ref}${tail}`;
    }
    const pinned = REF_PIN.exec(raw);
    if (pinned && pinned[5] === ref) {
      const [, lead = '', q = '', from = '', hash = '', , tail = ''] = pinned;
      pins.push({ line: i + 1, kind: 'labforge_ref', from, to: sha });
      return `${lead}${q}${sha}${q}${hash}${ref}${tail}`;
    }
    return raw;
  });
  return { text: lines.join('\n'), pins };
}

interface GitResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs git with an argument vector (no shell), never prompting for credentials. */
function git(args: string[], timeoutMs = 120_000): Promise<GitResult> {
  return new Promise((done, fail) => {
    execFile('git', args, { env: { ...process.env, GIT_TERMINAL_PROMPT: '0' }, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error && (error as NodeJS.ErrnoException).code === 'ENOENT') {
        fail(new Error('git is not installed or not on PATH (install git)'));
        return;
      }
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
      done({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

const firstLine = (text: string) => text.trim().split('\n')[0]?.replace(/^fatal: /, '') ?? '';

/** Where the ref is resolved: a local repository, or a remote URL. */
export type PinSource = { repositoryDir: string } | { remote: string };

/** The full commit SHA `ref` names in a local repository or at a remote. Bad input throws {@link InputError}. */
export async function resolveRef(ref: string, source: PinSource): Promise<string> {
  if (!REF_NAME.test(ref)) throw new InputError('ref', `'${ref}' is not a tag or branch name`, 'give a tag such as v1 or v1.4.0, a branch, or HEAD');
  if ('repositoryDir' in source) {
    const dir = source.repositoryDir;
    const r = await git(['-C', dir, 'rev-parse', '--verify', '--quiet', '--end-of-options', `${ref}^{commit}`]);
    const sha = r.stdout.trim();
    if (r.code === 0 && FULL_SHA.test(sha)) return sha;
    if (/not a git repository|cannot change to/i.test(r.stderr)) {
      throw new InputError('repository-dir', `${dir} is not a git repository (${firstLine(r.stderr)})`, 'give the directory of a labforge clone, or --remote URL');
    }
    throw new InputError('ref', `'${ref}' names no commit in ${dir}`, 'give a tag, branch or commit of that repository (git tag --list shows its tags)');
  }
  const url = source.remote;
  const r = await git(['ls-remote', '--', url]);
  if (r.code !== 0) throw new Error(`cannot list the refs of ${url}: ${firstLine(r.stderr) || `git ls-remote exited with ${r.code}`}`);
  const refs = new Map<string, string>();
  for (const line of r.stdout.split('\n')) {
    const [sha = '', name = ''] = line.split('\t');
    if (FULL_SHA.test(sha) && name) refs.set(name, sha);
  }
  // An annotated tag's own line names the tag object; its peeled line (`^{}`) names the commit.
  const candidates = ref.startsWith('refs/') ? [`${ref}^{}`, ref] : [`refs/tags/${ref}^{}`, `refs/tags/${ref}`, `refs/heads/${ref}`, ...(ref === 'HEAD' ? ['HEAD'] : [])];
  for (const name of candidates) {
    const sha = refs.get(name);
    if (sha) return sha;
  }
  throw new InputError('ref', `'${ref}' is neither a tag nor a branch of ${url}`, 'give a ref the remote has (git ls-remote --tags URL lists them)');
}

export const pinCommand: Command = {
  name: 'pin',
  summary: 'Pin workflows that call labforge (uses: OWNER/labforge/…@SHA # REF, labforge_ref: SHA # REF) to the commit a ref names now.',
  usage: '--ref REF [--repository-dir DIR | --remote URL] FILE...',
  flags: {
    ref: { type: 'string', description: 'the ref to resolve, named in the pin lines\' comment (# v1)' },
    'repository-dir': { type: 'string', description: 'a labforge clone to resolve the ref in', default: '.' },
    remote: { type: 'string', description: 'resolve the ref at this repository URL instead (git ls-remote)' },
  },
  details: [
    'Rewrites, in every FILE, each line that ends with the comment # REF:',
    '  uses: OWNER/labforge/.github/workflows/build.yml@<anything> # REF  ->  …@<commit SHA> # REF',
    '  labforge_ref: <anything> # REF                                   ->  labforge_ref: <commit SHA> # REF',
    'and prints each change. Running it again changes nothing until REF moves.',
    '',
    'Examples:',
    '  node bin/labforge pin --ref v1 workflows-templates/build-on-demand.yml workflows-templates/release.yml',
    '  labforge pin --remote https://github.com/OWNER/labforge --ref v1 .github/workflows/build-on-demand.yml .github/workflows/release.yml',
    '',
    'Exit codes: 0 pinned (or already pinned), 1 git failed (e.g. the remote cannot be read), 2 bad input: an unknown ref,',
    'a file that is missing or has no pin line for REF.',
  ].join('\n'),
  run: async ({ get, positionals, print }) => {
    const ref = readRequired(get, 'ref', 'give the ref to pin to, e.g. --ref v1');
    const remote = readString(get, 'remote');
    const dirGiven = readString(get, 'repository-dir');
    if (remote && dirGiven) throw new InputError('remote', 'is given together with repository-dir', 'give one: --repository-dir DIR (a local clone) or --remote URL');
    if (remote.startsWith('-')) throw new InputError('remote', `'${remote}' is not a repository URL`, 'give a URL such as https://github.com/OWNER/labforge');
    if (!REF_NAME.test(ref)) throw new InputError('ref', `'${ref}' is not a tag or branch name`, 'give a tag such as v1 or v1.4.0, a branch, or HEAD');
    const files = [...new Set(positionals)];
    if (files.length === 0) throw new InputError('FILE', 'no workflow file given', 'name the files to pin, e.g. workflows-templates/build-on-demand.yml workflows-templates/release.yml');

    // Every file is read and checked before the ref is resolved or anything is written.
    const texts = new Map<string, string>();
    for (const file of files) {
      let text: string;
      try {
        text = await readFile(file, 'utf8');
      } catch (e) {
        throw new InputError('FILE', `cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, 'name workflow files that exist');
      }
      if (pinText(text, ref, '0'.repeat(40)).pins.length === 0) {
        throw new InputError('FILE', `${file} has no labforge pin line for ${ref}`, `pin lines end with '# ${ref}': uses: OWNER/labforge/.github/workflows/build.yml@<sha> # ${ref}, labforge_ref: <sha> # ${ref}`);
      }
      texts.set(file, text);
    }

    const source: PinSource = remote ? { remote } : { repositoryDir: resolve(dirGiven || '.') };
    const sha = await resolveRef(ref, source);
    let changed = 0;
    let changedFiles = 0;
    for (const [file, text] of texts) {
      const result = pinText(text, ref, sha);
      const moved = result.pins.filter((p) => p.from !== p.to);
      if (moved.length === 0) {
        print(`${file}: already pinned to ${sha} (${ref})`);
        continue;
      }
      await writeFile(file, result.text);
      for (const p of moved) print(`${file}:${p.line}: ${p.kind} ${p.from || '(empty)'} -> ${p.to} # ${ref}`);
      changed += moved.length;
      changedFiles++;
    }
    print(`${ref} is ${sha}${remote ? ` at ${remote}` : ''}: ${changed} line${changed === 1 ? '' : 's'} changed in ${changedFiles} file${changedFiles === 1 ? '' : 's'}`);
    return 0;
  },
};
