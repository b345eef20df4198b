/**
 * Reads Packer's `-machine-readable` output: one event per line, `timestamp,target,type,data…`, with commas
 * inside data written as `%!(PACKER_COMMA)` and line breaks as a literal `\n`. Turns the stream into UI
 * lines, artifacts, errors, and the build phase each UI line belongs to.
 */

/** One line of `-machine-readable` output. */
export type PackerEvent =
  | { kind: 'ui'; time: Date; target: string; level: 'say' | 'message' | 'error'; text: string }
  | { kind: 'artifact-count'; time: Date; target: string; count: number }
  | { kind: 'artifact'; time: Date; target: string; index: number; key: string; values: string[] }
  | { kind: 'error-count'; time: Date; count: number }
  | { kind: 'error'; time: Date; target: string; text: string }
  | { kind: 'other'; time: Date; target: string; type: string; data: string[] };

/** Undoes Packer's escaping of one data field. */
export function unescapeField(field: string): string {
  return field.replace(/%!\(PACKER_COMMA\)/g, ',').replace(/\\n/g, '\n').replace(/\\r/g, '\r');
}

/** Parses one line; returns undefined for a line that is not machine-readable output (e.g. a plugin's stray print). */
export function parseMachineReadableLine(line: string): PackerEvent | undefined {
  const fields = line.replace(/\r?\n$/, '').split(',');
  if (fields.length < 3 || !/^\d+$/.test(fields[0] ?? '')) return undefined;
  const time = new Date(Number(fields[0]) * 1000);
  const target = fields[1] ?? '';
  const type = fields[2] ?? '';
  const data = fields.slice(3).map(unescapeField);
  switch (type) {
    case 'ui': {
      const level = data[0];
      if (level !== 'say' && level !== 'message' && level !== 'error') return { kind: 'other', time, target, type, data };
      return { kind: 'ui', time, target, level, text: data.slice(1).join(',') };
    }
    case 'artifact-count':
      return { kind: 'artifact-count', time, target, count: Number(data[0]) };
    case 'artifact':
      return { kind: 'artifact', time, target, index: Number(data[0]), key: data[1] ?? '', values: data.slice(2) };
    case 'error-count':
      return { kind: 'error-count', time, count: Number(data[0]) };
    case 'error':
      return { kind: 'error', time, target, text: data.join(',') };
    default:
      return { kind: 'other', time, target, type, data };
  }
}

/** An artifact a builder produced. */
export interface PackerArtifact {
  /** The build that made it (`qemu.hedgehog`, `file.out`). */
  build: string;
  builderId: string;
  id: string;
  /** Packer's one-line description. */
  description: string;
  /** Files of the artifact (as Packer reports them, relative to Packer's working directory). */
  files: string[];
}

/** Collects `artifact` events into {@link PackerArtifact}s, in order. */
export class ArtifactCollector {
  private readonly byKey = new Map<string, PackerArtifact>();

  add(event: PackerEvent): void {
    if (event.kind !== 'artifact') return;
    const k = `${event.target}#${event.index}`;
    let a = this.byKey.get(k);
    if (!a) {
      a = { build: event.target, builderId: '', id: '', description: '', files: [] };
      this.byKey.set(k, a);
    }
    const v = event.values;
    if (event.key === 'builder-id') a.builderId = v[0] ?? '';
    else if (event.key === 'id') a.id = v[0] ?? '';
    else if (event.key === 'string') a.description = v.join(',');
    else if (event.key === 'file') a.files.push(v.slice(1).join(','));
  }

  get artifacts(): PackerArtifact[] {
    return [...this.byKey.values()];
  }
}

/** The phases of a Packer build, as the job log groups them. */
export const PACKER_PHASES = ['prepare', 'boot', 'wait-ssh', 'provision', 'shutdown', 'finish'] as const;
export type PackerPhase = (typeof PACKER_PHASES)[number];

/** UI lines that open a phase (qemu builder wording of Packer 1.6–1.11 and its plugin). */
const PHASE_MARKERS: [RegExp, PackerPhase][] = [
  [/: (Retrieving ISO|Copying hard drive|Creating hard drive|Resizing hard drive|Downloading or copying)/, 'prepare'],
  [/: (Starting HTTP server|Looking for available (communicator )?port|Starting VM|Found port for communicator)/, 'boot'],
  [/: Waiting for SSH to become available/, 'wait-ssh'],
  [/: (Connected to SSH|Provisioning with|Running local shell script|Uploading )/, 'provision'],
  [/: (Gracefully halting|Halting the virtual machine|Waiting for shutdown|Converting hard drive|Compressing)/, 'shutdown'],
  [/(Builds finished|Wait completed)/, 'finish'],
];

/** The phase a UI line starts, if it starts one. */
export function phaseOf(text: string): PackerPhase | undefined {
  for (const [re, phase] of PHASE_MARKERS) if (re.test(text)) return phase;
  return undefined;
}

/** The host port forwarded to the guest's SSH, from a UI line or a PACKER_LOG line, if it names one. */
export function sshPortFrom(text: string): number | undefined {
  const m =
    /hostfwd=tcp:[^:,]*:(\d+)-:22\b/.exec(text) ??
    /Found port for communicator \(SSH, WinRM, etc\): (\d+)/.exec(text) ??
    /Found available port: (\d+)/.exec(text) ??
    /Attempting SSH connection to [^\s:]+:(\d+)/.exec(text) ??
    /Using (?:SSH|communicator) port:? (\d+)/i.exec(text);
  return m ? Number(m[1]) : undefined;
}

/** Splits a byte stream into lines (keeps the last partial line until more arrives). */
export class LineSplitter {
  private partial = '';

  push(chunk: string): string[] {
    const lines = (this.partial + chunk).split('\n');
    this.partial = lines.pop() ?? '';
    return lines;
  }

  flush(): string[] {
    const rest = this.partial;
    this.partial = '';
    return rest === '' ? [] : [rest];
  }
}
