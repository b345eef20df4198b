/**
 * Which pushed tags start the Release workflow, and what detect-build-type makes of them. GitHub matches
 * `on.push.tags` with its filter patterns; this test reads them with the rules of GitHub's "Filter pattern
 * cheat sheet" (checked here against the cheat sheet's own examples), so that a moving tag such as `v1`
 * never starts a build, and every tag the filter lets through is either a release detect-build-type
 * builds or one it refuses with a clear error.
 */
import { describe, expect, it } from '@jest/globals';
import { join } from 'node:path';
import { detectBuildType } from '../../actions/lib/build-decision.js';
import { InputError } from '../../actions/lib/inputs.js';
import { repoRoot } from '../support/run-action.js';
import { readYamlFile } from '../support/workflow-files.js';

/**
 * A GitHub filter pattern as a regular expression matching the whole name:
 * `*` any characters but `/`; `**` any characters; `?` zero or one of the preceding character; `+` one or
 * more of the preceding character; `[…]` one character of the set (ranges a-z, A-Z, 0-9); `\` escapes the
 * next character; anything else is itself.
 */
export function filterPatternRegExp(pattern: string): RegExp {
  const atoms: string[] = [];
  const literal = (c: string) => c.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i] ?? '';
    if (c === '*') {
      if (pattern[i + 1] === '*') {
        atoms.push('.*');
        i++;
      } else atoms.push('[^/]*');
    } else if (c === '+' || c === '?') {
      const last = atoms.pop();
      if (last === undefined) throw new Error(`filter pattern '${pattern}': '${c}' follows nothing`);
      atoms.push(`(?:${last})${c}`);
    } else if (c === '[') {
      const end = pattern.indexOf(']', i + 1);
      if (end < 0) throw new Error(`filter pattern '${pattern}': '[' is not closed`);
      const set = pattern.slice(i + 1, end);
      if (!/^(?:[a-z]-[a-z]|[A-Z]-[A-Z]|[0-9]-[0-9]|[^-\]])+$/.test(set)) throw new Error(`filter pattern '${pattern}': [${set}] has a range other than a-z, A-Z, 0-9`);
      atoms.push(`[${set}]`);
      i = end;
    } else if (c === '\\') {
      atoms.push(literal(pattern[i + 1] ?? ''));
      i++;
    } else atoms.push(literal(c));
  }
  return new RegExp(`^${atoms.join('')}$`);
}

/** Whether a list of filter patterns selects `name` (a later `!pattern` excludes what earlier ones included). */
export function filterSelects(patterns: string[], name: string): boolean {
  let selected = false;
  for (const p of patterns) {
    if (p.startsWith('!')) {
      if (filterPatternRegExp(p.slice(1)).test(name)) selected = false;
    } else if (filterPatternRegExp(p).test(name)) selected = true;
  }
  return selected;
}

describe('the filter pattern rules, checked against the examples of GitHub\'s cheat sheet', () => {
  it.each([
    ['feature/*', 'feature/my-branch', true],
    ['feature/*', 'feature/your-branch/x', false],
    ['feature/**', 'feature/beta-a/my-branch', true],
    ['*feature', 'mona-feature', true],
    ['*feature', 'ver-10-feature', true],
    ['v2*', 'v2', true],
    ['v2*', 'v2.0', true],
    ['v2*', 'v3', false],
    ['v[12].[0-9]+.[0-9]+', 'v1.10.1', true],
    ['v[12].[0-9]+.[0-9]+', 'v2.0.0', true],
    ['v[12].[0-9]+.[0-9]+', 'v3.0.0', false],
    ['v[12].[0-9]+.[0-9]+', 'v1x10x1', false], // '.' is itself
    ['[CB]at', 'Cat', true],
    ['[1-2]00', '200', true],
    // `?` as the cheat sheet defines it today ("zero or one of the preceding character"). An older example,
    // `Octoc?t` → `Octocat`, read `?` as one character; the Release patterns use no `?`, so nothing depends on it.
    ['Octoc?t', 'Octoct', true],
    ['Octoc?t', 'Octot', true],
  ])('%s on %s → %s', (pattern, name, want) => {
    expect(filterSelects([pattern], name)).toBe(want);
  });

  it('a later !pattern excludes', () => {
    expect(filterSelects(['releases/**', '!releases/**-alpha'], 'releases/10-alpha')).toBe(false);
    expect(filterSelects(['releases/**', '!releases/**-alpha'], 'releases/10')).toBe(true);
  });
});

describe('the Release workflow starts only for release tags', () => {
  const tagPatterns = (path: string) => {
    const on = readYamlFile(join(repoRoot, path)).data['on'] as { push?: { tags?: string[]; branches?: unknown; 'tags-ignore'?: unknown } };
    expect(Object.keys(on)).toEqual(['push']);
    expect(Object.keys(on.push ?? {})).toEqual(['tags']);
    return on.push?.tags ?? [];
  };

  it('the template and this repository\'s copy filter the same tags', () => {
    expect(tagPatterns('.github/workflows/release.yml')).toEqual(tagPatterns('workflows-templates/release.yml'));
    for (const p of tagPatterns('workflows-templates/release.yml')) expect(() => filterPatternRegExp(p)).not.toThrow();
  });

  /** What detect-build-type decides for the push of a tag: `<type> <version>`, or `refused`. */
  const detect = async (tag: string) => {
    try {
      const d = await detectBuildType({ eventName: 'push', ref: `refs/tags/${tag}` });
      return `${d.buildType} ${d.version}`;
    } catch (e) {
      if (e instanceof InputError && e.input === 'ref') return 'refused';
      throw e;
    }
  };

  // tag → [does the Release workflow start, what detect-build-type then does]
  it.each([
    ['v1', false, 'refused'], // the moving major tag that `uses: …@v1` users follow
    ['v1.2', false, 'refused'],
    ['v1.2.3', true, 'standard 1.2.3'],
    ['v10.20.30', true, 'standard 10.20.30'],
    ['v1.2.3-prewarmed', true, 'prewarmed 1.2.3'],
    ['v1.2.3-prewarmed.4', true, 'prewarmed 1.2.3'],
    ['v1.2.3-rc.1', true, 'standard 1.2.3-rc.1'], // a pre-release: built as a standard release, marked pre-release
    ['v1.2.3-rc.1-prewarmed', true, 'prewarmed 1.2.3-rc.1'],
    ['v1.2.3-', true, 'refused'], // through the filter, refused by detect with the reason
    ['v1.2.3-prewarmed.x', true, 'refused'],
    ['v01.2.3', true, 'refused'], // not semver (leading zero)
    ['v1.2.3+build.5', false, 'standard 1.2.3+build.5'], // build metadata: not started (push v1.2.3 instead)
    ['1.2.3', false, 'refused'],
    ['release/v1.2.3', false, 'refused'],
    ['nightly', false, 'refused'],
  ])('%s: started %s, detect-build-type: %s', async (tag, started, decision) => {
    expect(filterSelects(tagPatterns('workflows-templates/release.yml'), tag)).toBe(started);
    expect(await detect(tag)).toBe(decision);
  });
});
