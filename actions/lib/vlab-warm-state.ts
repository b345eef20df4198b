/**
 * What the steps of a warm share (vlab-warm.ts runs them): the options, the running machine and session, the
 * results so far; and the warm manifest written into the guest.
 */
import type { CloudInitSeed } from './cloud-init-seed.js';
import type { VmHandle, Accelerator } from './qemu-vm.js';
import type { ExecResult, RemoteSession } from './ssh-remote.js';
import type { SbomFile } from './sbom.js';
import type { WarmOptions } from './vlab-warm-inputs.js';

/** The record written into the guest at `manifestPath` after readiness is proven. */
export interface WarmManifest {
  schema: 1;
  buildType: 'prewarmed';
  labVersion: string;
  warmedAt: string;
  mode: 'boot' | 'attach';
  sourceImage?: string;
  accelerator?: Accelerator;
  /** Seconds per step up to readiness. */
  timings: Record<string, number>;
  init: { command: string; exitCode: number | null; seconds: number };
  readiness: {
    command: string;
    exitCode: number | null;
    seconds: number;
    provedAt: string;
    /** The tail of the probe's output. */
    output: string;
    /** The lab's status JSON (status-command), when it printed JSON. */
    status: unknown;
  };
}

/** What a running warm holds, reported as soon as it exists so that a `post:` step can clean up. */
export interface WarmResources {
  qemuPid?: number;
  overlay?: string;
  serialLog?: string;
  /** The private directory of the cloud-init seed (cloud-init-seed). */
  seedDir?: string;
}

/** The state the warm steps share. */
export interface WarmState {
  opts: WarmOptions;
  log: (line: string) => void;
  onResources: (r: WarmResources) => void;
  onSecret: (secret: string) => void;
  seed?: CloudInitSeed;
  overlay?: string;
  serialLog?: string;
  vm?: VmHandle;
  vmExited?: boolean;
  session?: RemoteSession;
  /** The guest file holding the registry credential while it is there (removed after readiness). */
  credentialFile?: string;
  init?: ExecResult;
  ready?: ExecResult;
  status?: unknown;
  manifest?: WarmManifest;
  timings: Record<string, number>;
  flattenTmp?: string;
  sbom?: SbomFile;
}


/** The last `lines` non-empty lines of a command's output. */
export const tail = (text: string, lines = 25) => text.split('\n').filter((l) => l.trim() !== '').slice(-lines).join('\n');
