/**
 * Repositories for the workflow runner STAND-IN (a test double for GitHub; see index.ts): GitHub's
 * repositories are replaced by local git repositories, given by the caller as `owner/name → directory`.
 * It resolves refs (SHA, tag, branch) the way GitHub does for `uses:` and actions/checkout, reads a file at
 * a commit (`git show`), clones a repository at a commit, and can snapshot a working tree as a commit so
 * that a test runs exactly the files on disk without touching HEAD, the index or any ref.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Runs git in `dir`; throws with git's message when it fails. */
export function git(dir: string, args: string[], env: Record<string, string> = {}): string {
  const r = spawnSync('git', args, { cwd: dir, encoding: 'utf8', env: { ...process.env, ...env }, maxBuffer: 256 * 1024 * 1024 });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`git ${args.join(' ')} (in ${dir}) failed: ${(r.stderr || r.stdout).trim()}`);
  return r.stdout;
}

/** The commit a ref names in a local repository (full or short SHA, tag, branch, `refs/...`), or undefined. */
export function resolveCommit(dir: string, ref: string): string | undefined {
  if (ref.startsWith('-')) return undefined;
  const candidates = [ref, `refs/tags/${ref}`, `refs/heads/${ref}`, `refs/remotes/origin/${ref}`];
  for (const c of candidates) {
    const r = spawnSync('git', ['rev-parse', '--verify', '--quiet', `${c}^{commit}`], { cwd: dir, encoding: 'utf8' });
    if (r.status === 0 && r.stdout.trim()) return r.stdout.trim();
  }
  return undefined;
}

/** A file's content at a commit; throws when it does not exist there. */
export function readFileAt(dir: string, sha: string, path: string): string {
  return git(dir, ['show', `${sha}:${path.replace(/^\.\//, '')}`]);
}

/** Clones `srcDir` into the (empty or absent) `dest` and checks out `sha` detached. */
export function cloneAt(srcDir: string, sha: string, dest: string): void {
  // --shared: the clone borrows the source's objects, so commits that no ref reaches (a snapshot) exist too.
  git(srcDir, ['clone', '--quiet', '--no-checkout', '--shared', srcDir, dest]);
  git(dest, ['-c', 'advice.detachedHead=false', 'checkout', '--quiet', '--detach', sha]);
}

/**
 * A commit holding the working tree of `dir` as it is on disk (tracked and untracked files, minus ignored
 * ones), parented on HEAD. Made with a temporary index, so HEAD, the index and the refs stay untouched;
 * the commit is an unreferenced object that git's garbage collection removes in time.
 */
export function snapshotWorkingTree(dir: string): string {
  const tmp = mkdtempSync(join(tmpdir(), 'labforge-snapshot-'));
  try {
    const env = { GIT_INDEX_FILE: join(tmp, 'index') };
    const head = resolveCommit(dir, 'HEAD');
    if (head) git(dir, ['read-tree', head], env);
    git(dir, ['add', '-A', '.'], env);
    const tree = git(dir, ['write-tree'], env).trim();
    const identity = { GIT_AUTHOR_NAME: 'runner stand-in', GIT_AUTHOR_EMAIL: 'standin@localhost', GIT_COMMITTER_NAME: 'runner stand-in', GIT_COMMITTER_EMAIL: 'standin@localhost' };
    return git(dir, ['commit-tree', tree, ...(head ? ['-p', head] : []), '-m', 'working tree snapshot (runner stand-in)'], identity).trim();
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** The caller's map of `owner/name` → local repository directory (names compare case-insensitively, as on GitHub). */
export class Repositories {
  private readonly dirs = new Map<string, string>();

  constructor(map: Record<string, string>) {
    for (const [name, dir] of Object.entries(map)) this.dirs.set(name.toLowerCase(), dir);
  }

  /** The directory of a repository, or undefined when the caller did not map it. */
  find(repository: string): string | undefined {
    return this.dirs.get(repository.toLowerCase());
  }

  /** The directory of a repository; throws naming the known ones when it is not mapped. */
  dir(repository: string): string {
    const dir = this.find(repository);
    if (dir === undefined) throw new Error(`repository '${repository}' is not known to the runner stand-in (known: ${[...this.dirs.keys()].join(', ') || 'none'}); map it in the 'repositories' option`);
    return dir;
  }
}
