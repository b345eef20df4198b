/**
 * The SSH watchdog of a Packer build: when Packer has waited too long for SSH, it runs ssh-diagnose against
 * the forwarded port (from Packer's output or its log) and reports the verdict in the build's log.
 *
 * A verdict that nothing answers SSH yet (nothing listening, QEMU's forward closing the connection, no
 * banner) is what a guest that is still booting gives, which on a loaded TCG host can take longer than the
 * watchdog's delay. While Packer keeps waiting, the watchdog then looks again (every half delay, at least
 * 15 s) until sshd answers and the verdict says what stops the login, or Packer stops waiting. The verdict a
 * failed build carries is the last one.
 */
import { readFile } from 'node:fs/promises';
import { sshPortFrom, type PackerEvent } from './packer-machine-readable.js';
import type { BuildReporter } from './packer-process.js';
import { causeInfo } from './ssh-causes.js';
import { diagnoseSsh, formatDiagnosis, type SshDiagnosis } from './ssh-diagnose.js';

export interface SshWatchdogOptions {
  /** Diagnose once Packer has been waiting for SSH this long (seconds). 0 turns the watchdog off. */
  afterSeconds: number;
  /** The user Packer logs in as. */
  username: string;
  /** Private key file Packer uses (read when the watchdog fires). */
  privateKeyFile?: string;
  password?: string;
}

/** Runs ssh-diagnose against the forwarded port when Packer waits for SSH too long. */
export class SshWatchdog {
  private timer?: NodeJS.Timeout;
  private port?: number;
  private running?: Promise<void>;
  /** Seconds Packer has waited at the next look; false once Packer connected or the build ended. */
  private waiting: number | false = 0;
  verdict?: SshDiagnosis;

  constructor(
    private readonly options: SshWatchdogOptions,
    private readonly buildLog: string,
    private readonly reporter: BuildReporter,
  ) {}

  observe(event: PackerEvent): void {
    if (event.kind !== 'ui') return;
    const port = sshPortFrom(event.text);
    if (port) this.port = port;
    if (/Waiting for SSH to become available/.test(event.text) && this.options.afterSeconds > 0 && !this.timer && !this.verdict && this.waiting === 0) {
      this.schedule(this.options.afterSeconds, this.options.afterSeconds);
    }
    if (/Connected to SSH!/.test(event.text)) this.stop();
  }

  private schedule(inSeconds: number, waitedSeconds: number): void {
    this.waiting = waitedSeconds;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.running = this.fire(waitedSeconds);
    }, inSeconds * 1000);
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.waiting = false;
  }

  /** Waits for a diagnosis in progress. */
  async settle(): Promise<void> {
    this.stop();
    await this.running;
  }

  private async portFromLog(): Promise<number | undefined> {
    const text = await readFile(this.buildLog, 'utf8').catch(() => '');
    let port: number | undefined;
    for (const line of text.split('\n')) port = sshPortFrom(line) ?? port;
    return port;
  }

  private async fire(waited: number): Promise<void> {
    const port = this.port ?? (await this.portFromLog());
    const again = waited > this.options.afterSeconds;
    // Plain prefixed lines, no log group: the watchdog speaks inside the wait-ssh phase's group.
    try {
      if (port === undefined) {
        this.reporter.line(`SSH watchdog: Packer has waited ${waited} s for SSH, but neither its output nor its log names the forwarded port; no diagnosis`);
        return;
      }
      this.reporter.line(`SSH watchdog: Packer has waited ${waited} s for SSH; diagnosing 127.0.0.1:${port} as ${this.options.username}${again ? ' again' : ''}`);
      const privateKey = this.options.privateKeyFile ? await readFile(this.options.privateKeyFile, 'utf8').catch(() => undefined) : undefined;
      this.verdict = await diagnoseSsh({
        host: '127.0.0.1',
        port,
        username: this.options.username,
        password: this.options.password,
        privateKey,
        privateKeyPath: this.options.privateKeyFile,
        timeoutSeconds: 10,
        waitSeconds: 0,
        command: 'true',
        checkSudo: false,
      });
      for (const l of formatDiagnosis(this.verdict).trimEnd().split('\n')) this.reporter.line(`SSH watchdog: ${l}`);
      const info = causeInfo(this.verdict.cause);
      if (this.waiting !== false && info.retryable && (info.layer === 'tcp' || info.layer === 'banner')) {
        // Nothing answers SSH yet: a guest still booting looks like this. Look again while Packer waits.
        const next = Math.max(15, Math.round(this.options.afterSeconds / 2));
        this.reporter.line(`SSH watchdog: no sshd answers yet (the guest may still be booting); looking again in ${next} s while Packer waits`);
        this.schedule(next, waited + next);
      }
    } catch (e) {
      this.reporter.line(`SSH watchdog: the diagnosis itself failed: ${(e as Error).message}`);
    }
  }
}
