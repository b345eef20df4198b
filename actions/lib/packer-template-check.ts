/**
 * Checks that a `template` input names something Packer can read — before Packer runs, so a wrong file is
 * one input error instead of a Packer parse failure after the preflight: a `.pkr.hcl` file with at least one
 * top-level Packer block, a `.pkr.json`/`.json` file holding a JSON object with Packer's keys, or a directory
 * holding such files.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { printable } from './escape.js';
import { InputError } from './inputs.js';

const HCL_BLOCK = /^\s*(source|build|packer|variable|variables|locals|local|data)\s+("[^"\n]*"\s*)*\{/m;
const JSON_KEYS = ['builders', 'source', 'build', 'packer', 'variable', 'locals'];

function checkTemplateFile(path: string, input: string, shown: string): void {
  const st = statSync(path);
  if (st.size === 0) throw new InputError(input, `${shown} is empty (0 bytes)`, 'give a Packer template (.pkr.hcl or .pkr.json)');
  const text = readFileSync(path, 'utf8');
  if (path.endsWith('.pkr.hcl')) {
    if (!HCL_BLOCK.test(text)) throw new InputError(input, `${shown} is not a Packer template (no source, build, packer or variable block)`, 'give a Packer HCL template (.pkr.hcl)');
    return;
  }
  if (path.endsWith('.json')) {
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch (e) {
      throw new InputError(input, `${shown} is not JSON (${printable((e as Error).message, 120)})`, 'give a Packer template (.pkr.hcl or .pkr.json)');
    }
    if (typeof doc !== 'object' || doc === null || Array.isArray(doc) || !JSON_KEYS.some((k) => k in doc)) {
      throw new InputError(input, `${shown} is JSON but not a Packer template (no builders, source or build)`, 'give a Packer template (.pkr.hcl or .pkr.json)');
    }
    return;
  }
  throw new InputError(input, `${shown} is not a Packer template (the name does not end in .pkr.hcl, .pkr.json or .json)`, 'give a Packer template file, or a directory of *.pkr.hcl files');
}

/** Throws an {@link InputError} naming `input` unless `path` (absolute) is a Packer template file or directory. */
export function checkPackerTemplate(path: string, input = 'template', shown = path): void {
  const st = statSync(path);
  const label = printable(shown, 200);
  if (st.isDirectory()) {
    const files = readdirSync(path).filter((f) => f.endsWith('.pkr.hcl') || f.endsWith('.pkr.json'));
    if (files.length === 0) throw new InputError(input, `directory ${label} holds no *.pkr.hcl or *.pkr.json file`, 'give a Packer template file, or a directory of *.pkr.hcl files');
    return;
  }
  if (!st.isFile()) throw new InputError(input, `${label} is not a regular file`, 'give a Packer template file, or a directory of *.pkr.hcl files');
  checkTemplateFile(path, input, label);
}
