/**
 * vlab-warm: turn a standard appliance image into a pre-warmed one.
 *
 * The standard image is never modified: the warm runs on a copy-on-write overlay. QEMU boots the overlay
 * (own process group, serial console to a file, SSH forwarded from a free 127.0.0.1 port); over SSH the
 * guest orchestrator initializes the lab in build-time mode, readiness is proven with a real probe, and only
 * then the marker `prewarmed` and a warm manifest (lab version, timings, readiness evidence) are written.
 * The guest is sealed (clone hygiene), shut down cleanly (poweroff, then kill after a timeout) and the
 * overlay is flattened into the output image.
 *
 * Attach mode warms a machine that something else runs (e.g. a Packer build calling `labforge warm
 * --attach` from a shell-local provisioner): no overlay, boot, shutdown or flatten.
 *
 * A sealed cloud-init image (the real appliance: its seal removed the build user's key) needs
 * `cloud-init-seed`: a per-run key pair and a NoCloud seed ISO that authorizes it (cloud-init-seed.ts),
 * attached to QEMU as a read-only virtio disk and removed afterwards.
 *
 * With `registry-credential`, docker's config for the lab's registry is piped into the guest's tmpfs over SSH
 * stdin before init and removed once the lab is ready (registry-credential.ts).
 *
 * The warm is a sequence of steps with cleanups (see step-sequence.ts): failure or cancellation anywhere
 * leaves no QEMU, no overlay and no seed behind. The modules: vlab-warm-inputs.ts (inputs), vlab-warm-vm.ts
 * (overlay, seed, QEMU, shutdown, flatten, post cleanup), vlab-warm-guest.ts (the SSH side), vlab-warm-state.ts
 * (what the steps share); this one runs them.
 */
import { resolve } from 'node:path';
import { printable } from './escape.js';
import { runSteps, StepFailedError, type Step, type StepTiming } from './step-sequence.js';
import type { SbomFile } from './sbom.js';
import { shellQuote } from './ssh-remote.js';
import type { WarmOptions } from './vlab-warm-inputs.js';
import type { WarmManifest, WarmResources, WarmState } from './vlab-warm-state.js';
import { bootStep, flattenStep, overlayStep, seedStep, shutdownStep } from './vlab-warm-vm.js';
import { credentialRemoveStep, credentialStep, initStep, markStep, readyStep, sbomStep, sealStep, sshUpStep } from './vlab-warm-guest.js';

export type { Accelerator } from './qemu-vm.js';
export { checkWarmOutput, parseQemuArgs, readApplianceWarmOptions, readWarmOptions, DEFAULT_MANIFEST_PATH, DEFAULT_MARKER_PATH, ORCHESTRATOR, SEAL_HELPER, type WarmOptions } from './vlab-warm-inputs.js';
export type { WarmManifest, WarmResources } from './vlab-warm-state.js';
export { cleanupWarm } from './vlab-warm-vm.js';

export interface WarmResult {
  /** The pre-warmed image (boot mode). */
  image?: string;
  warmSeconds: number;
  /** Seconds per step: boot, ssh-up, init, ready, mark, seal, shutdown, flatten. */
  timeline: Record<string, number>;
  steps: StepTiming[];
  manifest: WarmManifest;
  serialLog?: string;
  /** The SBOM written after the seal (none when the guest took no package inventory). */
  sbom?: SbomFile;
}

export interface WarmRunOptions {
  /** Receives every progress and remote output line. */
  log?: (line: string) => void;
  signal?: AbortSignal;
  onResources?: (resources: WarmResources) => void;
  /** Called when a step starts (tests use it to cancel mid-init). */
  onStepStart?: (step: string) => void;
  /** Receives secrets made during the run (the generated private key) so that the caller can mask them. */
  onSecret?: (secret: string) => void;
}

/** A warm that failed: which step, why, and the evidence (remote output, diagnosis, serial lines). */
export class WarmError extends Error {
  constructor(
    readonly step: string,
    message: string,
    readonly timeline: StepTiming[],
  ) {
    super(message);
    this.name = 'WarmError';
  }
}

/** The steps of a warm, in order. */
export const WARM_STEPS: Step<WarmState>[] = [overlayStep, seedStep, bootStep, sshUpStep, credentialStep, initStep, readyStep, credentialRemoveStep, markStep, sealStep, sbomStep, shutdownStep, flattenStep];

/** Warms an image (or an attached machine). Rejects with a {@link WarmError} naming the failed step. */
export async function warmImage(opts: WarmOptions, run: WarmRunOptions = {}): Promise<WarmResult> {
  const log = run.log ?? (() => undefined);
  const state: WarmState = { opts, log, onResources: run.onResources ?? (() => undefined), onSecret: run.onSecret ?? (() => undefined), timings: {} };
  const started = Date.now();
  let steps: StepTiming[];
  try {
    steps = await runSteps(WARM_STEPS, state, {
      ...(run.signal ? { signal: run.signal } : {}),
      onStepStart: (name) => {
        log(`== ${name}`);
        run.onStepStart?.(name);
      },
      onStepEnd: (t) => {
        if (t.status !== 'skipped') state.timings[t.step] = t.seconds;
      },
      onCleanupError: (step, e) => log(`cleanup of ${step} failed: ${printable(e.message)}`),
    });
  } catch (e) {
    if (e instanceof StepFailedError) {
      const cancelled = e.timeline.at(-1)?.status === 'cancelled';
      throw new WarmError(e.step, cancelled ? `warm cancelled during ${e.step}; QEMU stopped and the overlay removed` : `warm failed at ${e.step}: ${e.cause.message}`, e.timeline);
    }
    throw e;
  }
  const timeline = Object.fromEntries(steps.filter((t) => t.status === 'ok').map((t) => [t.step, t.seconds]));
  return {
    ...(opts.output ? { image: resolve(opts.output) } : {}),
    warmSeconds: Math.round((Date.now() - started) / 100) / 10,
    timeline,
    steps,
    manifest: state.manifest!,
    ...(state.serialLog ? { serialLog: state.serialLog } : {}),
    ...(state.sbom ? { sbom: state.sbom } : {}),
  };
}

/** The timeline as a compact JSON object (the action's `timeline` output). */
export function timelineJson(result: Pick<WarmResult, 'timeline'>): string {
  return JSON.stringify(result.timeline);
}

/** A shell command line from words (for composing init/ready commands). */
export function commandLine(words: string[]): string {
  return words.map(shellQuote).join(' ');
}
