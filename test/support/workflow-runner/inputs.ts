/**
 * Inputs and secrets for the workflow runner STAND-IN (a test double for GitHub; see index.ts), typed as
 * GitHub types them. workflow_dispatch: the `inputs` context gets booleans and numbers for boolean and
 * number inputs (`github.event.inputs` keeps strings), defaults apply, a choice outside its options, an
 * unknown input or a missing required one refuses the dispatch (GitHub answers 422). workflow_call: values
 * from the caller's `with:` must have the declared type (string inputs accept numbers and booleans as
 * strings), defaults (expressions allowed) fill the rest, else '' / false / 0; secrets are passed
 * explicitly (only declared names) or with `inherit`, plus GITHUB_TOKEN.
 */
import { isBoolean, isMapping, isSequence, isString } from '@actions/workflow-parser';
import type { TemplateToken } from '@actions/workflow-parser/templates/tokens/index';
import { evaluateToken, literalValue, toExpressionString, type Scope } from './expressions.js';
import { prop } from './parse.js';
import { UnsupportedError, type JsonObject, type JsonValue } from './types.js';

export interface InputDefinition {
  name: string;
  type: 'string' | 'boolean' | 'number' | 'choice' | 'environment';
  required: boolean;
  default?: TemplateToken;
  options?: string[];
}

/** The input definitions of `on.workflow_dispatch.inputs` or `on.workflow_call.inputs` (parsed tokens). */
export function inputDefinitions(inputs: TemplateToken | undefined): InputDefinition[] {
  if (!inputs || !isMapping(inputs)) return [];
  const out: InputDefinition[] = [];
  for (const p of inputs) {
    const name = p.key.toString();
    const typeToken = prop(p.value, 'type');
    const type = typeToken && isString(typeToken) ? typeToken.value : 'string';
    if (!['string', 'boolean', 'number', 'choice', 'environment'].includes(type)) throw new UnsupportedError(`input ${name}: type ${type} is not implemented by the runner stand-in`);
    const required = prop(p.value, 'required');
    const options = prop(p.value, 'options');
    out.push({
      name,
      type: type as InputDefinition['type'],
      required: required !== undefined && isBoolean(required) && required.value,
      default: prop(p.value, 'default'),
      options: options && isSequence(options) ? [...options].map((o) => o.toString()) : undefined,
    });
  }
  return out;
}

function typeDefault(type: InputDefinition['type']): JsonValue {
  return type === 'boolean' ? false : type === 'number' ? 0 : '';
}

/** Typed workflow_dispatch inputs; throws as GitHub refuses the dispatch. */
export function dispatchInputs(defs: InputDefinition[], given: Record<string, string | boolean | number>): { typed: JsonObject; strings: Record<string, string> } {
  const refuse = (msg: string): never => {
    throw new Error(`GitHub would refuse this workflow_dispatch (HTTP 422): ${msg}`);
  };
  const byName = new Map(defs.map((d) => [d.name.toLowerCase(), d]));
  const unexpected = Object.keys(given).filter((k) => !byName.has(k.toLowerCase()));
  if (unexpected.length > 0) refuse(`Unexpected inputs provided: ${JSON.stringify(unexpected)}`);
  const typed: JsonObject = {};
  const strings: Record<string, string> = {};
  for (const d of defs) {
    const key = Object.keys(given).find((k) => k.toLowerCase() === d.name.toLowerCase());
    let value: JsonValue;
    if (key !== undefined) {
      const v = given[key]!;
      if (d.type === 'boolean') {
        if (typeof v === 'boolean') value = v;
        else if (v === 'true' || v === 'false') value = v === 'true';
        else value = refuse(`Provided value '${String(v)}' for input '${d.name}' is not a boolean`);
      } else if (d.type === 'number') {
        const n = typeof v === 'number' ? v : Number(v);
        value = Number.isFinite(n) && String(v).trim() !== '' ? n : refuse(`Provided value '${String(v)}' for input '${d.name}' is not a number`);
      } else {
        value = String(v);
        if (d.type === 'choice' && !(d.options ?? []).includes(value)) refuse(`Provided value '${value}' for input '${d.name}' not in the list of allowed values`);
      }
    } else if (d.default !== undefined) {
      value = literalValue(d.default);
      if (d.type === 'number' && typeof value === 'string') value = Number(value);
    } else if (d.required) {
      value = refuse(`Required input '${d.name}' not provided`);
    } else {
      value = d.type === 'boolean' ? false : '';
    }
    typed[d.name] = value;
    strings[d.name] = toExpressionString(value, `input ${d.name}`);
  }
  return { typed, strings };
}

/**
 * Typed workflow_call inputs from the caller's evaluated `with:`. Returns the errors GitHub reports for
 * values of the wrong type (they fail the calling job).
 */
export function callInputs(defs: InputDefinition[], given: JsonObject, scope: Scope): { typed: JsonObject; errors: string[] } {
  const errors: string[] = [];
  const typed: JsonObject = {};
  const byName = new Map(defs.map((d) => [d.name.toLowerCase(), d]));
  for (const k of Object.keys(given)) if (!byName.has(k.toLowerCase())) errors.push(`Invalid input, ${k} is not defined in the referenced workflow.`);
  for (const d of defs) {
    const key = Object.keys(given).find((k) => k.toLowerCase() === d.name.toLowerCase());
    let value: JsonValue;
    let from = 'with';
    if (key !== undefined) {
      value = given[key]!;
    } else if (d.default !== undefined) {
      value = evaluateToken(d.default, { contexts: { ...scope.contexts, inputs: typed } });
      from = 'default';
    } else if (d.required) {
      errors.push(`Input ${d.name} is required, but not provided while calling.`);
      continue;
    } else {
      value = typeDefault(d.type);
    }
    const kind = value === null ? 'null' : Array.isArray(value) ? 'sequence' : typeof value === 'object' ? 'mapping' : typeof value;
    if (d.type === 'boolean' && typeof value !== 'boolean') errors.push(`Input ${d.name} (${from}): unexpected value ${JSON.stringify(value)} of type ${kind}, expected a boolean`);
    else if (d.type === 'number' && typeof value !== 'number') errors.push(`Input ${d.name} (${from}): unexpected value ${JSON.stringify(value)} of type ${kind}, expected a number`);
    else if (d.type === 'string' && value !== null && typeof value === 'object') errors.push(`Input ${d.name} (${from}): a ${kind} was not expected, expected a string`);
    else typed[d.name] = d.type === 'string' ? toExpressionString(value, `input ${d.name}`) : value;
  }
  return { typed, errors };
}

/** The secrets a called workflow gets; throws for a secret it does not declare. */
export function callSecrets(definitions: TemplateToken | undefined, given: Record<string, string> | 'inherit', callerSecrets: Record<string, string>): Record<string, string> {
  const token = callerSecrets['GITHUB_TOKEN'] ?? '';
  if (given === 'inherit') return { ...callerSecrets };
  const declared = new Map<string, { required: boolean }>();
  if (definitions && isMapping(definitions)) {
    for (const p of definitions) {
      const req = prop(p.value, 'required');
      declared.set(p.key.toString().toLowerCase(), { required: req !== undefined && isBoolean(req) && req.value });
    }
  }
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(given)) {
    if (!declared.has(k.toLowerCase())) throw new UnsupportedError(`Invalid secret, ${k} is not defined in the referenced workflow.`);
    out[k] = v;
  }
  for (const [name, d] of declared) {
    if (d.required && !Object.keys(out).some((k) => k.toLowerCase() === name)) throw new UnsupportedError(`Secret ${name} is required, but not provided while calling.`);
  }
  return { ...out, GITHUB_TOKEN: token };
}
