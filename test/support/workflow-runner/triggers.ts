/**
 * Event triggers for the workflow runner STAND-IN (a test double for GitHub; see index.ts): whether a
 * workflow runs for an event. An event its `on:` does not list is refused (an error: the test asked for
 * something GitHub never does). For `push`, the `branches` / `branches-ignore` / `tags` / `tags-ignore`
 * filters select the ref as GitHub does (only branch filters → no tag pushes, and the other way round),
 * with GitHub's filter pattern syntax: `*` (not `/`), `**`, `?` and `+` (zero-or-one / one-or-more of the
 * preceding character), `[]` classes, `\` escapes and `!` negation (later patterns win). A ref filtered out
 * is "not triggered", not an error. `pull_request` branch filters apply to the base branch, `types` to the
 * payload's action. Path filters are refused (the stand-in has no diff to apply them to).
 */
import type { EventsConfig } from '@actions/workflow-parser/model/workflow-template';
import { refName, refType } from './context.js';
import { UnsupportedError, type JsonObject } from './types.js';

export interface TriggerDecision {
  triggered: boolean;
  reason?: string;
}

/** A GitHub filter pattern as an anchored regular expression. */
export function filterPatternToRegExp(pattern: string): RegExp {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '\\' && i + 1 < pattern.length) {
      re += pattern[++i]!.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
    } else if (c === '*') {
      if (pattern[i + 1] === '*') {
        re += '.*';
        i++;
      } else {
        re += '[^/]*';
      }
    } else if (c === '?' || c === '+') {
      re += re === '' ? `\\${c}` : c;
    } else if (c === '[') {
      const end = pattern.indexOf(']', i + 1);
      if (end < 0) {
        re += '\\[';
      } else {
        re += `[${pattern.slice(i + 1, end).replace(/\\/g, '\\\\')}]`;
        i = end;
      }
    } else {
      re += c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
    }
  }
  return new RegExp(`^${re}$`);
}

/** Whether a name is selected by a list of patterns (a `!pattern` deselects; the last match decides). */
export function matchesFilters(name: string, patterns: string[]): boolean {
  let matched = false;
  for (const p of patterns) {
    if (p.startsWith('!')) {
      if (filterPatternToRegExp(p.slice(1)).test(name)) matched = false;
    } else if (filterPatternToRegExp(p).test(name)) {
      matched = true;
    }
  }
  return matched;
}

type Filters = { branches?: string[]; 'branches-ignore'?: string[]; tags?: string[]; 'tags-ignore'?: string[]; paths?: string[]; 'paths-ignore'?: string[]; types?: string[] };

function applyFilter(name: string, kind: string, include: string[] | undefined, ignore: string[] | undefined): TriggerDecision {
  if (include && !matchesFilters(name, include)) return { triggered: false, reason: `${kind} '${name}' does not match ${kind === 'tag' ? 'tags' : 'branches'}: ${JSON.stringify(include)}` };
  if (ignore && matchesFilters(name, ignore)) return { triggered: false, reason: `${kind} '${name}' matches ${kind === 'tag' ? 'tags' : 'branches'}-ignore: ${JSON.stringify(ignore)}` };
  return { triggered: true };
}

/** Whether the workflow runs for this event; throws when its `on:` does not accept the event at all. */
export function decideTrigger(events: EventsConfig, eventName: string, ref: string, payload: JsonObject, workflowPath: string): TriggerDecision {
  if (eventName === 'workflow_call') throw new UnsupportedError(`${workflowPath}: workflow_call is not an event to start a run with; run a workflow that calls it`);
  if (!Object.prototype.hasOwnProperty.call(events, eventName)) {
    throw new Error(`${workflowPath} does not run on '${eventName}' (its on: accepts ${Object.keys(events).join(', ')})`);
  }
  const cfg = (events[eventName] ?? {}) as Filters;
  if (cfg.paths || cfg['paths-ignore']) throw new UnsupportedError(`${workflowPath}: on.${eventName} path filters are not implemented by the runner stand-in`);
  if (cfg.types && !cfg.types.includes(String(payload['action'] ?? ''))) {
    return { triggered: false, reason: `activity type '${String(payload['action'] ?? '')}' is not in types: ${JSON.stringify(cfg.types)}` };
  }
  if (eventName === 'push') {
    const hasBranch = cfg.branches !== undefined || cfg['branches-ignore'] !== undefined;
    const hasTag = cfg.tags !== undefined || cfg['tags-ignore'] !== undefined;
    if (!hasBranch && !hasTag) return { triggered: true };
    const kind = refType(ref);
    const name = refName(ref);
    if (kind === 'tag') return hasTag ? applyFilter(name, 'tag', cfg.tags, cfg['tags-ignore']) : { triggered: false, reason: `tag '${name}': the push filters name branches only` };
    return hasBranch ? applyFilter(name, 'branch', cfg.branches, cfg['branches-ignore']) : { triggered: false, reason: `branch '${name}': the push filters name tags only` };
  }
  if (eventName === 'pull_request' || eventName === 'pull_request_target') {
    if (cfg.tags || cfg['tags-ignore']) throw new UnsupportedError(`${workflowPath}: on.${eventName} tag filters are not implemented by the runner stand-in`);
    const pr = payload['pull_request'] as JsonObject | undefined;
    const base = ((pr?.['base'] as JsonObject | undefined)?.['ref'] as string | undefined) ?? '';
    if (!cfg.types && payload['action'] !== undefined && !['opened', 'synchronize', 'reopened'].includes(String(payload['action']))) {
      return { triggered: false, reason: `activity type '${String(payload['action'])}' is not one of the default types opened, synchronize, reopened` };
    }
    return applyFilter(base, 'branch', cfg.branches, cfg['branches-ignore']);
  }
  const anyFilter = cfg.branches || cfg['branches-ignore'] || cfg.tags || cfg['tags-ignore'];
  if (anyFilter) throw new UnsupportedError(`${workflowPath}: on.${eventName} branch/tag filters are not implemented by the runner stand-in`);
  return { triggered: true };
}
