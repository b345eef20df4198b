/**
 * The guest side of a warm, over SSH: wait for SSH (with the ssh-diagnose verdict and the serial console when
 * it never comes up), initialize the lab, prove readiness, write the warm manifest and the marker, seal, and
 * read the seal's package inventory into the SBOM.
 */
import { basename } from 'node:path';
import { logLines, logText, printable } from './escape.js';
import { connectSsh, SshConnectTimeoutError, type ExecResult, type SshTarget } from './ssh-remote.js';
import type { Step } from './step-sequence.js';
import { diagnoseSsh, formatDiagnosis } from './ssh-diagnose.js';
import { relevantSerialLines, serialLogProblem } from './serial-log.js';
import { buildGitSha, sbomFromGuest } from './sbom.js';
import { REGISTRY_HOST, removeGuestRegistryCredential, writeGuestRegistryCredential } from './registry-credential.js';
import type { WarmOptions } from './vlab-warm-inputs.js';
import { tail, type WarmState } from './vlab-warm-state.js';

/** Who and how the warm logs in (user, key, passphrase, pinned host key): the same for the connect and the diagnosis. */
function sshTarget(host: string, port: number, o: WarmOptions): SshTarget & { privateKey: string } {
  return {
    host,
    port,
    username: o.sshUser,
    privateKey: o.sshKey,
    ...(o.sshPassphrase ? { passphrase: o.sshPassphrase } : {}),
    ...(o.expectedHostKey ? { expectedHostKey: o.expectedHostKey } : {}),
  };
}

export const sshUpStep: Step<WarmState> = {
  name: 'ssh-up',
  run: async (s, signal) => {
    const o = s.opts;
    const host = o.attach?.host ?? '127.0.0.1';
    const port = o.attach?.port ?? s.vm!.sshPort;
    let lastNote = 0;
    try {
      s.session = await connectSsh({
        ...sshTarget(host, port, o),
        timeoutMs: o.sshTimeoutMinutes * 60_000,
        attemptTimeoutMs: 20_000,
        // With a seed, cloud-init authorizes the key during boot: sshd may refuse it until then.
        ...(o.cloudInitSeed ? { refusedKeyAttempts: Number.POSITIVE_INFINITY } : {}),
        signal,
        onAttemptFailed: (n, e, ms) => {
          if (s.vmExited) throw new Error(`QEMU exited while waiting for SSH (see ${s.serialLog})`);
          if (ms - lastNote >= 15_000) {
            lastNote = ms;
            s.log(`waiting for SSH on ${host}:${port} (${Math.round(ms / 1000)} s, attempt ${n}: ${printable(e.message)})`);
          }
        },
      });
    } catch (e) {
      if (signal.aborted || !(e instanceof SshConnectTimeoutError || s.vmExited)) throw e;
      throw new Error(`${(e as Error).message}\n${await sshVerdict(host, port, o, s.serialLog)}`, { cause: e });
    }
    s.log(`SSH up as ${o.sshUser}@${host}:${port} (host key ${s.session.hostKeyFingerprint})`);
  },
  cleanup: async (s) => {
    s.session?.close();
  },
};

/**
 * Why SSH did not come up: the ssh-diagnose verdict (layered probes, cause, fix) with the serial console's
 * telling lines; if the diagnosis itself cannot run, at least those lines. A serial log that does not
 * exist, cannot be read or is empty is said so in one line (which path, why), never left out silently.
 */
export async function sshVerdict(host: string, port: number, o: WarmOptions, serialLog: string | undefined): Promise<string> {
  const serialProblem = serialLog ? await serialLogProblem(serialLog) : undefined;
  const quoted = serialLog && serialProblem === undefined ? serialLog : undefined;
  const withProblem = (text: string) => (serialProblem ? `${text}
${serialProblem}` : text);
  try {
    const diagnosis = await diagnoseSsh({
      ...sshTarget(host, port, o),
      timeoutSeconds: 15,
      waitSeconds: 0,
      command: 'true',
      checkSudo: true,
      ...(quoted ? { serialLog: quoted } : {}),
    });
    return withProblem(formatDiagnosis(diagnosis).trimEnd());
  } catch (e) {
    const lines = [`(ssh-diagnose could not run: ${printable((e as Error).message)})`];
    if (quoted) {
      const evidence = await relevantSerialLines({ path: quoted });
      if (evidence.problem) lines.push(evidence.problem);
      else lines.push(`Serial log ${printable(quoted)}:`, ...(evidence.lines.length > 0 ? evidence.lines.map((l) => `  ${l.line} [${l.finding}] ${l.text}`) : evidence.tail.map((t) => `  ${t}`)));
    }
    return withProblem(lines.join('\n'));
  }
}

/** Runs a remote command, streaming its output; fails with its exit code and last lines. */
async function remoteStep(s: WarmState, what: string, command: string, timeoutMinutes: number, signal: AbortSignal): Promise<ExecResult> {
  s.log(`$ ${printable(command, 2000)}`);
  // The guest's output, escaped line by line: a guest line can never be a workflow command or a terminal escape.
  const r = await s.session!.exec(command, { timeoutMs: timeoutMinutes * 60_000, signal, onLine: (line) => { for (const l of logLines(line)) s.log(`  | ${l}`); } });
  if (r.code !== 0) {
    const evidence = tail(`${r.stdout}\n${r.stderr}`);
    throw new Error(`${what} failed: '${printable(command, 2000)}' exited with ${r.code ?? `signal ${r.signal ?? '?'}`} after ${Math.round(r.durationMs / 1000)} s${evidence ? `; last output:\n${logText(evidence)}` : ' (no output)'}`);
  }
  return r;
}
/**
 * The registry credential (registry-credential), for what the lab downloads during init and readiness:
 * docker's config in the guest's tmpfs, piped over SSH stdin (registry-credential.ts). The cleanup removes
 * it when the warm fails before {@link credentialRemoveStep} did.
 */
export const credentialStep: Step<WarmState> = {
  name: 'credential',
  skip: (s) => !s.opts.registryCredential,
  run: async (s) => {
    s.credentialFile = await writeGuestRegistryCredential(s.session!, s.opts.registryCredential!, { ...(s.opts.registryConfigDir ? { dir: s.opts.registryConfigDir } : {}) });
    s.log(`registry credential for ${REGISTRY_HOST} written to ${s.credentialFile} in the guest (mode 0600, through SSH stdin); removed once the lab is ready`);
  },
  cleanup: async (s) => {
    if (!s.credentialFile) return;
    await removeGuestRegistryCredential(s.session!, { ...(s.opts.registryConfigDir ? { dir: s.opts.registryConfigDir } : {}), timeoutMs: 15_000 });
    s.log(`removed the registry credential ${s.credentialFile} from the guest`);
    s.credentialFile = undefined;
  },
};

/** After readiness, before the marker and the seal: the credential leaves the guest (the seal removes its directory again). */
export const credentialRemoveStep: Step<WarmState> = {
  name: 'credential-remove',
  skip: (s) => !s.opts.registryCredential,
  run: async (s) => {
    await removeGuestRegistryCredential(s.session!, { ...(s.opts.registryConfigDir ? { dir: s.opts.registryConfigDir } : {}) });
    s.log(`removed the registry credential ${s.credentialFile ?? ''} from the guest`);
    s.credentialFile = undefined;
  },
};

export const initStep: Step<WarmState> = {
  name: 'init',
  run: async (s, signal) => {
    s.init = await remoteStep(s, 'lab initialization', s.opts.initCommand, s.opts.initTimeoutMinutes, signal);
  },
};

export const readyStep: Step<WarmState> = {
  name: 'ready',
  run: async (s, signal) => {
    s.ready = await remoteStep(s, 'readiness check', s.opts.readyCommand, s.opts.readyTimeoutMinutes, signal);
    if (s.opts.statusCommand !== '') {
      const st = await s.session!.exec(s.opts.statusCommand, { timeoutMs: 120_000, signal });
      try {
        s.status = st.code === 0 ? JSON.parse(st.stdout) : null;
      } catch {
        s.status = null;
      }
    }
    s.log(`lab ready (${Math.round(s.ready.durationMs / 1000)} s): ${printable(tail(s.ready.stdout, 1)) || 'probe exit 0'}`);
  },
};

export const markStep: Step<WarmState> = {
  name: 'mark',
  run: async (s) => {
    const o = s.opts;
    const r = s.ready!;
    s.manifest = {
      schema: 1,
      buildType: 'prewarmed',
      labVersion: o.version,
      warmedAt: new Date().toISOString(),
      mode: o.attach ? 'attach' : 'boot',
      ...(o.image ? { sourceImage: basename(o.image), accelerator: o.accelerator } : {}),
      timings: { ...s.timings },
      init: { command: o.initCommand, exitCode: s.init!.code, seconds: Math.round(s.init!.durationMs / 100) / 10 },
      readiness: {
        command: o.readyCommand,
        exitCode: r.code,
        seconds: Math.round(r.durationMs / 100) / 10,
        provedAt: new Date().toISOString(),
        output: tail(`${r.stdout}\n${r.stderr}`, 40),
        status: s.status ?? null,
      },
    };
    // The manifest first, the marker last: a marker always has its evidence next to it.
    await s.session!.writeFile(o.manifestPath, JSON.stringify(s.manifest, null, 2) + '\n', { sudo: true, mode: '0644' });
    await s.session!.writeFile(o.markerPath, 'prewarmed\n', { sudo: true, mode: '0644' });
    s.log(`marker ${o.markerPath} = prewarmed; manifest ${o.manifestPath}`);
  },
};

export const sealStep: Step<WarmState> = {
  name: 'seal',
  skip: (s) => !s.opts.seal,
  run: async (s, signal) => {
    await remoteStep(s, 'sealing', s.opts.sealCommand, 10, signal);
  },
};

// The inventory the seal took, read over the same session before the shutdown, becomes the SBOM.
export const sbomStep: Step<WarmState> = {
  name: 'sbom',
  skip: (s) => !s.opts.seal || !s.opts.sbom,
  run: async (s, signal) => {
    const { out, appliance } = s.opts.sbom!;
    s.sbom = await sbomFromGuest(s.session!, { out, subject: { appliance, buildType: 'prewarmed', version: s.opts.version, buildDate: new Date().toISOString(), gitSha: buildGitSha() }, log: s.log, signal });
  },
};
