/**
 * Expressions for the workflow runner STAND-IN (a test double for the GitHub Actions runner; see index.ts).
 * Every `${{ }}` is evaluated by GitHub's own evaluator (@actions/expressions: Lexer, Parser, Evaluator, with
 * its functions contains, startsWith, endsWith, format, join, toJSON, fromJSON, case). The status functions
 * success(), failure(), cancelled(), always() are supplied as extension functions, as the runner does, from
 * the job's (or, in a job's `if:`, the needed jobs') status. hashFiles() is declared so that workflows parse,
 * but calling it is refused (no workflow here uses it). Template tokens of the parsed workflow (strings,
 * numbers, booleans, null, expressions, sequences, mappings) become JSON values; `${{ insert }}` is refused.
 */
import { data, Evaluator, Lexer, Parser } from '@actions/expressions';
import { TokenType as ExprTokenType, type Token } from '@actions/expressions/lexer';
import type { FunctionDefinition } from '@actions/expressions/funcs/info';
import { truthy } from '@actions/expressions/result';
import { isBasicExpression, isBoolean, isMapping, isNumber, isSequence, isString } from '@actions/workflow-parser';
import type { TemplateToken } from '@actions/workflow-parser/templates/tokens/index';
import { TokenType } from '@actions/workflow-parser/templates/tokens/types';
import { UnsupportedError, type JsonObject, type JsonValue } from './types.js';

/** What the status functions answer where they are allowed (a step's or a job's `if:`, a post's `post-if`). */
export interface StatusFunctions {
  /** `success()` (job-level: with job ids, those needed jobs only). */
  success(jobIds: string[]): boolean;
  failure(jobIds: string[]): boolean;
  cancelled(): boolean;
}

/** The contexts (github, inputs, vars, secrets, needs, steps, env, runner, job, jobs, matrix, strategy) and the status. */
export interface Scope {
  contexts: JsonObject;
  status?: StatusFunctions;
}

/** A JSON value → GitHub's expression data. */
export function toData(value: JsonValue): data.ExpressionData {
  if (value === null) return new data.Null();
  if (typeof value === 'string') return new data.StringData(value);
  if (typeof value === 'number') return new data.NumberData(value);
  if (typeof value === 'boolean') return new data.BooleanData(value);
  if (Array.isArray(value)) return new data.Array(...value.map(toData));
  return new data.Dictionary(...Object.entries(value).map(([key, v]) => ({ key, value: toData(v) })));
}

/** GitHub's expression data → a JSON value. */
export function fromData(d: data.ExpressionData): JsonValue {
  switch (d.kind) {
    case data.Kind.Null:
      return null;
    case data.Kind.String:
      return (d as data.StringData).value;
    case data.Kind.Number:
      return (d as data.NumberData).number();
    case data.Kind.Boolean:
      return (d as data.BooleanData).value;
    case data.Kind.Array:
      return (d as data.Array).values().map(fromData);
    default: {
      const out: JsonObject = {};
      for (const p of (d as data.Dictionary).pairs()) out[p.key] = fromData(p.value);
      return out;
    }
  }
}

/** Truthiness by GitHub's rules (false, 0, '', null are false). */
export function isTruthy(value: JsonValue): boolean {
  return truthy(toData(value));
}

/** A value as the runner writes it into a string field (env, with, run): null → '', numbers as GitHub formats them. */
export function toExpressionString(value: JsonValue, what: string): string {
  if (value === null) return '';
  if (typeof value === 'string') return value;
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (typeof value === 'number') return new data.NumberData(value).coerceString();
  throw new Error(`${what}: a ${Array.isArray(value) ? 'sequence' : 'mapping'} was not expected where a string is (use toJSON())`);
}

function statusFunction(name: string, scope: Scope, call: (s: StatusFunctions, args: string[]) => boolean, maxArgs: number): FunctionDefinition {
  return {
    name,
    minArgs: 0,
    maxArgs,
    call: (...args: data.ExpressionData[]) => {
      if (!scope.status) throw new UnsupportedError(`${name}() is not available here`);
      return new data.BooleanData(call(scope.status, args.map((a) => a.coerceString())));
    },
  };
}

function functionsFor(scope: Scope): FunctionDefinition[] {
  return [
    statusFunction('success', scope, (s, a) => s.success(a), Number.MAX_SAFE_INTEGER),
    statusFunction('failure', scope, (s, a) => s.failure(a), Number.MAX_SAFE_INTEGER),
    statusFunction('cancelled', scope, (s) => s.cancelled(), 0),
    statusFunction('always', scope, () => true, 0),
    {
      name: 'hashFiles',
      minArgs: 1,
      maxArgs: 255,
      call: () => {
        throw new UnsupportedError('hashFiles() is not implemented by the runner stand-in');
      },
    },
  ];
}

/**
 * The lexer of @actions/expressions 0.3.61 unescapes only the first `''` of a string literal
 * (`value.replace("''", "'")`), so `'it''s ''quoted'''` would keep doubled quotes, and a `run:` script with
 * an expression and several single quotes (made into one format('…') string by the parser) would change.
 * The literal's value is recomputed from its lexeme, as GitHub's runner reads it.
 */
function fixStringLiterals(tokens: Token[]): Token[] {
  return tokens.map((t) => (t.type === ExprTokenType.STRING ? { ...t, value: t.lexeme.slice(1, -1).replace(/''/g, "'") } : t));
}

/** Evaluates one expression (the text inside `${{ }}`) with GitHub's evaluator. */
export function evaluateExpression(expression: string, scope: Scope): JsonValue {
  const functions = functionsFor(scope);
  const tokens = fixStringLiterals(new Lexer(expression).lex().tokens);
  const tree = new Parser(tokens, Object.keys(scope.contexts), functions.map(({ name, minArgs, maxArgs }) => ({ name, minArgs, maxArgs }))).parse();
  const ctx = toData(scope.contexts) as data.Dictionary;
  const fns = new Map(functions.map((f) => [f.name.toLowerCase(), f]));
  return fromData(new Evaluator(tree, ctx, fns).evaluate());
}

/** A parsed template token → its value, expressions evaluated (mapping keys too). */
export function evaluateToken(token: TemplateToken, scope: Scope): JsonValue {
  if (isString(token) || isNumber(token) || isBoolean(token)) return token.value;
  if (token.templateTokenType === TokenType.Null) return null;
  if (isBasicExpression(token)) {
    try {
      return evaluateExpression(token.expression, scope);
    } catch (e) {
      if (e instanceof UnsupportedError) throw e;
      throw new Error(`evaluating \${{ ${token.expression} }}${token.line !== undefined ? ` (line ${token.line})` : ''}: ${(e as Error).message}`, { cause: e });
    }
  }
  if (isSequence(token)) return [...token].map((t) => evaluateToken(t, scope));
  if (isMapping(token)) {
    const out: JsonObject = {};
    for (const p of token) out[toExpressionString(evaluateToken(p.key, scope), 'a mapping key')] = evaluateToken(p.value, scope);
    return out;
  }
  throw new UnsupportedError(`the template token ${token.toString()} (${token.typeName()}) is not implemented by the runner stand-in`);
}

/** A literal token (no expressions allowed, e.g. `permissions:`) as a JSON value. */
export function literalValue(token: TemplateToken): JsonValue {
  return evaluateToken(token, { contexts: {} });
}

/** A token that must give a string (absent → undefined). */
export function evaluateString(token: TemplateToken | undefined, scope: Scope, what: string): string | undefined {
  if (token === undefined) return undefined;
  return toExpressionString(evaluateToken(token, scope), what);
}

/** A token that must give a number (`timeout-minutes`); strings that are numbers are accepted, as GitHub does. */
export function evaluateNumber(token: TemplateToken | undefined, scope: Scope, what: string): number | undefined {
  if (token === undefined) return undefined;
  const v = evaluateToken(token, scope);
  const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN;
  if (!Number.isFinite(n)) throw new Error(`${what}: expected a number, got ${JSON.stringify(v)}`);
  return n;
}

/** A mapping of strings (env, with, outputs): every value evaluated to a string. */
export function evaluateStringMap(token: TemplateToken | undefined, scope: Scope, what: string): Record<string, string> {
  const out: Record<string, string> = {};
  if (token === undefined || token.templateTokenType === TokenType.Null) return out;
  if (!isMapping(token)) {
    const v = evaluateToken(token, scope);
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      for (const [k, x] of Object.entries(v)) out[k] = toExpressionString(x, `${what}.${k}`);
      return out;
    }
    throw new Error(`${what}: expected a mapping`);
  }
  for (const p of token) {
    const key = toExpressionString(evaluateToken(p.key, scope), `${what} key`);
    out[key] = toExpressionString(evaluateToken(p.value, scope), `${what}.${key}`);
  }
  return out;
}
