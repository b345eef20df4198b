/**
 * What a finished packer-build reports: the action's outputs and the job summary's rows.
 */
import type { PackerArtifact } from './packer-machine-readable.js';
import type { PackOvaResult } from './ova-pack.js';
import type { PhaseTiming } from './packer-process.js';
import type { SbomFile } from './sbom.js';
import type { SshDiagnosis } from './ssh-diagnose.js';
import type { StepTiming } from './step-sequence.js';

export interface PackerBuildResult {
  /** The disk image Packer built (qcow2), if any. */
  image?: string;
  ova?: PackOvaResult;
  /** The appliance's SBOM (`<base>.cdx.json` beside the OVA), made from the inventory the template fetched. */
  sbom?: SbomFile;
  /** The PACKER_LOG file, kept. */
  buildLog: string;
  durationSeconds: number;
  artifacts: PackerArtifact[];
  /** Packer's own phases (from its UI lines) and labforge's steps. */
  phases: PhaseTiming[];
  steps: StepTiming[];
  versions: Record<string, string>;
  /** The SSH watchdog's verdict, when it ran. */
  watchdog?: SshDiagnosis;
  notes: string[];
}

/** The action outputs (kebab-case strings). */
export function buildOutputs(r: PackerBuildResult): Record<string, string> {
  return {
    image: r.image ?? '',
    ova: r.ova?.ova ?? '',
    sha256: r.ova?.sha256 ?? '',
    size: r.ova ? String(r.ova.size) : '',
    sbom: r.sbom?.path ?? '',
    'build-log': r.buildLog,
    'duration-seconds': String(Math.round(r.durationSeconds)),
  };
}

/** Rows for the job summary: the outputs, the artifacts, then a timing per phase and the tool versions. */
export function buildSummaryRows(r: PackerBuildResult): [string, string][] {
  const rows: [string, string][] = Object.entries(buildOutputs(r))
    .filter(([, v]) => v !== '')
    .map(([k, v]) => [`\`${k}\``, v]);
  for (const a of r.artifacts) rows.push([`artifact ${a.build}`, a.files.length > 0 ? a.files.join(', ') : a.description]);
  for (const p of r.phases) rows.push([`phase ${p.phase}`, `${p.seconds.toFixed(1)} s`]);
  for (const [tool, v] of Object.entries(r.versions)) rows.push([tool, v]);
  return rows;
}
