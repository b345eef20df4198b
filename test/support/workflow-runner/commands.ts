/**
 * Workflow commands for the workflow runner STAND-IN (a test double for the GitHub Actions runner; see
 * index.ts). It acts on what a step prints as the runner does: `::add-mask::` (masked in all later output),
 * `::error` / `::warning` / `::notice` with their properties (recorded as annotations), `::group::` /
 * `::endgroup::`, `::debug::`, `::stop-commands::TOKEN` … `::TOKEN::` (commands in between are plain text),
 * `::echo::`; the disabled `::set-output` / `::save-state` / `::set-env` / `::add-path` are recorded as errors
 * and not applied. Secrets are masked as the runner masks them: the value, each line of a multi-line value,
 * and its base64, JSON and URL encodings. It also parses the file commands (GITHUB_OUTPUT, GITHUB_ENV,
 * GITHUB_STATE with `k=v` and `k<<DELIM` heredocs; GITHUB_PATH), failing on the formats the runner rejects.
 */
import type { Annotation } from './types.js';

/** The secret masker: every value added is replaced by `***` in all later output. */
export class Masker {
  private readonly values = new Set<string>();
  private sorted: string[] = [];

  /** Masks a value (an add-mask value or a secret), plus each of its lines and its common encodings. */
  add(value: string): void {
    const forms = new Set<string>([value]);
    for (const line of value.split(/\r?\n|\r/)) forms.add(line.trim());
    forms.add(Buffer.from(value).toString('base64'));
    forms.add(JSON.stringify(value).slice(1, -1));
    forms.add(encodeURIComponent(value));
    for (const f of forms) if (f.length > 0) this.values.add(f);
    this.sorted = [...this.values].sort((a, b) => b.length - a.length);
  }

  mask(text: string): string {
    let out = text;
    for (const v of this.sorted) if (out.includes(v)) out = out.split(v).join('***');
    return out;
  }

  /** Whether a text contains a masked value. */
  reveals(text: string): boolean {
    return this.sorted.some((v) => text.includes(v));
  }
}

function unescapeData(s: string): string {
  return s.replace(/%0D/gi, '\r').replace(/%0A/gi, '\n').replace(/%25/g, '%');
}

function unescapeProperty(s: string): string {
  return s.replace(/%0D/gi, '\r').replace(/%0A/gi, '\n').replace(/%3A/gi, ':').replace(/%2C/gi, ',').replace(/%25/g, '%');
}

interface Command {
  name: string;
  props: Record<string, string>;
  data: string;
}

/** `::name k=v,k2=v2::data` → the command, or undefined when the line is not one. */
export function parseCommand(line: string): Command | undefined {
  const m = /^::([A-Za-z0-9_-]+)(?: ([^:]*))?::(.*)$/s.exec(line.trimStart());
  if (!m) return undefined;
  const props: Record<string, string> = {};
  for (const pair of (m[2] ?? '').split(',')) {
    const i = pair.indexOf('=');
    if (i > 0) props[pair.slice(0, i).trim()] = unescapeProperty(pair.slice(i + 1));
  }
  return { name: (m[1] ?? '').toLowerCase(), props, data: unescapeData(m[3] ?? '') };
}

const DISABLED: Record<string, string> = {
  'set-output': 'The `set-output` command is deprecated and disabled in this stand-in. Write to $GITHUB_OUTPUT instead.',
  'save-state': 'The `save-state` command is deprecated and disabled in this stand-in. Write to $GITHUB_STATE instead.',
  'set-env': 'The `set-env` command is disabled. Write to $GITHUB_ENV instead.',
  'add-path': 'The `add-path` command is disabled. Write to $GITHUB_PATH instead.',
};

/**
 * Turns a step's stdout and stderr into its recorded log: lines in arrival order, workflow commands acted
 * on, everything masked.
 */
export class OutputProcessor {
  private readonly lines: string[] = [];
  private readonly partial = { stdout: '', stderr: '' };
  private stopToken: string | undefined;

  constructor(
    private readonly masker: Masker,
    private readonly where: { job: string; step?: string },
    private readonly annotate: (a: Annotation) => void,
    private readonly echo?: (line: string) => void,
  ) {}

  write(stream: 'stdout' | 'stderr', chunk: Buffer | string): void {
    const text = this.partial[stream] + chunk.toString();
    const parts = text.split('\n');
    this.partial[stream] = parts.pop() ?? '';
    for (const line of parts) this.line(line.replace(/\r$/, ''));
  }

  /** Flushes unterminated lines. */
  end(): void {
    for (const stream of ['stdout', 'stderr'] as const) {
      if (this.partial[stream] !== '') this.line(this.partial[stream]);
      this.partial[stream] = '';
    }
  }

  /** A line the runner itself adds to the step's log (e.g. why a step failed). */
  note(line: string): void {
    this.push(this.masker.mask(line));
  }

  /** An error the runner raises for the step: logged and annotated. */
  error(message: string): void {
    const masked = this.masker.mask(message);
    this.push(`##[error]${masked}`);
    this.annotate({ level: 'error', message: masked, ...this.where });
  }

  get log(): string {
    return this.lines.join('\n');
  }

  private push(line: string): void {
    this.lines.push(line);
    this.echo?.(line);
  }

  private line(raw: string): void {
    const cmd = parseCommand(raw);
    if (this.stopToken !== undefined) {
      if (raw.trim() === `::${this.stopToken}::`) {
        this.stopToken = undefined;
        return;
      }
      this.push(this.masker.mask(raw));
      return;
    }
    if (!cmd) {
      this.push(this.masker.mask(raw));
      return;
    }
    switch (cmd.name) {
      case 'add-mask':
        if (cmd.data.trim() !== '') this.masker.add(cmd.data.trim());
        return;
      case 'stop-commands':
        if (cmd.data === '') {
          this.error('Invalid stop-commands: the token is empty');
          return;
        }
        this.stopToken = cmd.data;
        return;
      case 'error':
      case 'warning':
      case 'notice': {
        const message = this.masker.mask(cmd.data);
        const num = (k: string) => (cmd.props[k] !== undefined && /^\d+$/.test(cmd.props[k]!) ? Number(cmd.props[k]) : undefined);
        const a: Annotation = { level: cmd.name, message, ...this.where };
        if (cmd.props['title'] !== undefined) a.title = this.masker.mask(cmd.props['title']);
        if (cmd.props['file'] !== undefined) a.file = cmd.props['file'];
        for (const [k, key] of [['line', 'line'], ['endLine', 'endLine'], ['col', 'col'], ['endColumn', 'endColumn']] as const) {
          const n = num(k);
          if (n !== undefined) a[key] = n;
        }
        this.annotate(a);
        this.push(`##[${cmd.name}]${message}`);
        return;
      }
      case 'group':
        this.push(`##[group]${this.masker.mask(cmd.data)}`);
        return;
      case 'endgroup':
        this.push('##[endgroup]');
        return;
      case 'debug':
        this.push(`##[debug]${this.masker.mask(cmd.data)}`);
        return;
      case 'echo':
        return;
      default:
        if (DISABLED[cmd.name]) {
          this.error(DISABLED[cmd.name]!);
          return;
        }
        // Unknown commands are not commands: the runner logs them as they are.
        this.push(this.masker.mask(raw));
    }
  }
}

/**
 * Parses a GITHUB_OUTPUT / GITHUB_ENV / GITHUB_STATE file (`name=value` lines and `name<<DELIMITER`
 * heredocs, as the runner reads them); throws on the formats the runner rejects.
 */
export function parseKeyValueFile(text: string, file: string): Record<string, string> {
  const out: Record<string, string> = {};
  const lines = text.split('\n').map((l) => l.replace(/\r$/, ''));
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? '';
    if (line === '') continue;
    const eq = line.indexOf('=');
    const hd = line.indexOf('<<');
    if (eq >= 0 && (hd < 0 || eq < hd)) {
      const key = line.slice(0, eq);
      if (key === '') throw new Error(`${file}: invalid format '${line}' (empty name)`);
      out[key] = line.slice(eq + 1);
    } else if (hd >= 0) {
      const key = line.slice(0, hd);
      const delim = line.slice(hd + 2);
      if (key === '' || delim === '') throw new Error(`${file}: invalid format '${line}'`);
      const body: string[] = [];
      let closed = false;
      for (i++; i < lines.length; i++) {
        if (lines[i] === delim) {
          closed = true;
          break;
        }
        body.push(lines[i] ?? '');
      }
      if (!closed) throw new Error(`${file}: matching delimiter not found '${delim}'`);
      out[key] = body.join('\n');
    } else {
      throw new Error(`${file}: invalid format '${line}'`);
    }
  }
  return out;
}

/** The directories a GITHUB_PATH file adds, in the order written. */
export function parsePathFile(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.replace(/\r$/, '').trim())
    .filter((l) => l !== '');
}
