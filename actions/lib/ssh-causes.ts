/**
 * Why an SSH login fails, as one id per cause, and what to do about each, written for the setting labforge
 * runs in: Packer's qemu builder waiting for its SSH communicator on a forwarded port, and a guest set up by
 * cloud-init (or Ubuntu autoinstall user-data).
 *
 * The ids are a contract: they are the `cause` output of the ssh-diagnose action and the CLI, and other
 * modules (packer-build, vlab-warm) branch on them.
 */

/** Every verdict ssh-diagnose can give. `ok` means every probe passed. */
export const SSH_CAUSES = [
  'ok',
  'host-not-found',
  'connection-refused',
  'connect-timeout',
  'host-unreachable',
  'connection-closed',
  'banner-timeout',
  'not-ssh',
  'kex-mismatch',
  'handshake-timeout',
  'host-key-mismatch',
  'no-credentials',
  'password-auth-disabled',
  'pubkey-auth-disabled',
  'key-algorithm-rejected',
  'auth-rejected',
  'command-failed',
  'sudo-requires-password',
  'sudo-failed',
] as const;

export type SshCause = (typeof SSH_CAUSES)[number];

/** The layer of the connection a cause belongs to, in probing order. */
export type SshLayer = 'tcp' | 'banner' | 'kex' | 'host-key' | 'auth' | 'command' | 'sudo' | 'done';

export interface SshCauseInfo {
  /** The layer that failed. */
  layer: SshLayer;
  /** One line: what is wrong. */
  title: string;
  /**
   * True for failures that a guest which is still booting also produces: nothing listening yet, a QEMU port
   * forward with no sshd behind it, or sshd up before cloud-init has set the password, the authorized keys,
   * `ssh_pwauth`, the host keys or the sudoers entry. These are retried while `wait-seconds` lasts, as Packer
   * retries until its `ssh_timeout`.
   */
  retryable: boolean;
  /** What to change, most likely first, for a Packer qemu build with a cloud-init/autoinstall guest. */
  fix: string[];
}

/** The causes-and-fixes table (docs/SSH_DIAGNOSE.md shows it). */
export const SSH_CAUSE_INFO: Record<SshCause, SshCauseInfo> = {
  ok: {
    layer: 'done',
    title: 'SSH works: connected, authenticated, ran the command (and sudo -n when checked)',
    retryable: false,
    fix: [],
  },
  'host-not-found': {
    layer: 'tcp',
    title: 'The host name does not resolve',
    retryable: false,
    fix: [
      'Use the address Packer connects to: with the qemu builder and user networking that is 127.0.0.1 and the forwarded host port (`host_port_min`/`host_port_max`), not the guest\'s own name or IP.',
    ],
  },
  'connection-refused': {
    layer: 'tcp',
    title: 'Nothing listens on the port (TCP connection refused)',
    retryable: true,
    fix: [
      'Check the port: Packer picks a host port between `host_port_min` and `host_port_max` and forwards it to the guest\'s 22 (`-netdev user,hostfwd=tcp::PORT-:22`); diagnose that port, not 22.',
      'If QEMU is not running any more the forward is gone: read the QEMU/Packer log and the serial log for a crash or an early exit.',
    ],
  },
  'connect-timeout': {
    layer: 'tcp',
    title: 'The TCP connection attempt timed out (no answer to SYN)',
    retryable: true,
    fix: [
      'A firewall drops the packets or the host is down; on a runner, check that nothing filters the forwarded port on 127.0.0.1.',
      'If the port is a QEMU forward: QEMU may be hung; see the serial log.',
    ],
  },
  'host-unreachable': {
    layer: 'tcp',
    title: 'No route to the host',
    retryable: true,
    fix: ['Use 127.0.0.1 and the forwarded port for a QEMU user-network guest; a bridged guest needs its DHCP address and a route to it.'],
  },
  'connection-closed': {
    layer: 'banner',
    title: 'The port accepts TCP and closes it at once, before any SSH banner',
    retryable: true,
    fix: [
      'With QEMU user networking this is a guest whose sshd is not listening (yet): QEMU accepts on the host and closes when the guest refuses. Keep waiting (Packer `ssh_timeout`), or find out why sshd does not start: the serial log shows boot, cloud-init and sshd errors.',
      'The guest has no network: check the serial log for a DHCP lease; the netdev must be `user` with the NIC model the guest kernel supports (virtio-net).',
      'sshd may be refusing connections (MaxStartups, TCP wrappers, a crashing sshd).',
    ],
  },
  'banner-timeout': {
    layer: 'banner',
    title: 'The port accepts TCP but never sends an SSH banner',
    retryable: true,
    fix: [
      'With QEMU user networking a guest that is still booting (or has no network) looks like this: the forward accepts, the guest never answers. Under TCG (no KVM) boot is 5-20x slower: use `accelerator = "kvm"` on a runner with /dev/kvm (run the preflight), or raise `ssh_timeout`.',
      'Check the serial log: kernel panic, emergency mode, no DHCP lease, cloud-init still running, or sshd failing to start.',
      'Set `headless = true`; a build that waits for a display never gets to boot.',
    ],
  },
  'not-ssh': {
    layer: 'banner',
    title: 'Something other than SSH answers on the port',
    retryable: false,
    fix: [
      'The port belongs to another service (the report names what it speaks, e.g. HTTP from Packer\'s `http_directory` server or VNC from QEMU\'s display). Point the communicator at the SSH forward (`ssh_port` / the hostfwd port); set `vnc_port_min/max` and `http_port_min/max` so the ranges do not overlap.',
    ],
  },
  'kex-mismatch': {
    layer: 'kex',
    title: 'Client and server have no key-exchange, host-key, cipher or MAC algorithm in common',
    retryable: false,
    fix: [
      'Do not restrict `KexAlgorithms`, `HostKeyAlgorithms`, `Ciphers` or `MACs` in the guest\'s sshd_config (or add a modern algorithm such as curve25519-sha256 / ssh-ed25519 / aes128-gcm@openssh.com).',
      'For old clients against OpenSSH >= 8.8 (ssh-rsa host keys signed with SHA-1 are off): give the guest an ed25519 host key (cloud-init `ssh_genkeytypes: [ed25519, ecdsa]`) or use a newer Packer.',
    ],
  },
  'handshake-timeout': {
    layer: 'kex',
    title: 'The server sent its banner but the key exchange did not finish in time',
    retryable: true,
    fix: [
      'The guest is extremely slow (TCG without KVM, starved of CPU) or sshd is stuck: use `accelerator = "kvm"`, give the VM more CPUs/memory, raise `timeout-seconds`.',
    ],
  },
  'host-key-mismatch': {
    layer: 'host-key',
    title: 'The server\'s host key is not the expected one',
    retryable: true,
    fix: [
      'The port reaches a different machine than you think (another VM, a stale port forward) or the guest regenerated its host keys on first boot (cloud-init `ssh_deletekeys: true`).',
      'Pin the key you provision: write `ssh_keys:` in cloud-init and pass its SHA256 fingerprint as `expected-host-key`; or drop `expected-host-key` for throwaway build VMs.',
    ],
  },
  'no-credentials': {
    layer: 'auth',
    title: 'No password or private key was given, and the server does not let users in without one',
    retryable: false,
    fix: ['Pass `password` or `private-key`/`private-key-path` (the same credential as the Packer communicator: `ssh_password` or `ssh_private_key_file`).'],
  },
  'password-auth-disabled': {
    layer: 'auth',
    title: 'A password was given but the server does not offer password or keyboard-interactive authentication',
    retryable: true,
    fix: [
      'Enable it in cloud-init: `ssh_pwauth: true` (writes `PasswordAuthentication yes`); for Ubuntu autoinstall put it under `user-data:`, and check no drop-in in /etc/ssh/sshd_config.d/ sets it back to no.',
      'Better for builds: use a per-build key in `ssh_authorized_keys` and Packer\'s `ssh_private_key_file`.',
    ],
  },
  'pubkey-auth-disabled': {
    layer: 'auth',
    title: 'A private key was given but the server does not offer publickey authentication',
    retryable: true,
    fix: ['Remove `PubkeyAuthentication no` from the guest\'s sshd_config (and drop-ins in /etc/ssh/sshd_config.d/), or use the password (`ssh_pwauth: true`).'],
  },
  'key-algorithm-rejected': {
    layer: 'auth',
    title: 'The key is authorized, but the server refuses the signature algorithm the client uses',
    retryable: false,
    fix: [
      'OpenSSH >= 8.8 refuses RSA signatures with SHA-1 (`ssh-rsa`); clients built on Go x/crypto/ssh before 2022 (older Packer releases and plugins) only sign RSA that way. Use an ed25519 key (`ssh-keygen -t ed25519`) in `ssh_authorized_keys` and `ssh_private_key_file`.',
      'Or, for a throwaway build VM only, allow it in the guest: `PubkeyAcceptedAlgorithms +ssh-rsa` in /etc/ssh/sshd_config.d/.',
    ],
  },
  'auth-rejected': {
    layer: 'auth',
    title: 'The server offered the method but refused the credential',
    retryable: true,
    fix: [
      'Wrong password: the user-data password must be a crypt hash of the same password Packer sends; generate it with `openssl passwd -6 \'the-password\'` (SHA-512) and put it in `passwd:` (cloud-init) or `identity.password` (autoinstall); `plain_text_passwd` takes the clear text.',
      'Unknown user: the user in `users:` / `identity.username` must be the `ssh_username` Packer uses; cloud-init does not create it if the user-data failed to parse (see the serial log).',
      'Key not authorized: put the public half of the build key in the user\'s `ssh_authorized_keys`; the account must not be locked (`lock_passwd: false` when logging in with a password).',
    ],
  },
  'command-failed': {
    layer: 'command',
    title: 'Logged in, but the command failed',
    retryable: false,
    fix: [
      'Read the command\'s exit status and output in the report. A `ForceCommand` in sshd_config, a login shell that is /usr/sbin/nologin or /bin/false, or a full disk break every Packer provisioner the same way.',
    ],
  },
  'sudo-requires-password': {
    layer: 'sudo',
    title: 'Logged in, but `sudo -n true` needs a password',
    retryable: true,
    fix: [
      'Give the build user passwordless sudo: cloud-init `sudo: ALL=(ALL) NOPASSWD:ALL` in its `users:` entry (autoinstall: a late-command writing /etc/sudoers.d/<user>).',
      'Or let Packer pass the password to sudo: `execute_command = "echo \'${var.ssh_password}\' | sudo -S sh -c \'{{ .Vars }} {{ .Path }}\'"` in the shell provisioner.',
    ],
  },
  'sudo-failed': {
    layer: 'sudo',
    title: 'Logged in, but `sudo -n true` failed for another reason',
    retryable: false,
    fix: ['Read the sudo output in the report: sudo may not be installed (add it to `packages:`) or sudoers has a syntax error (`visudo -c`).'],
  },
};

/** The remediation for a cause: its title and fixes. */
export function causeInfo(cause: SshCause): SshCauseInfo {
  return SSH_CAUSE_INFO[cause];
}

/**
 * The fixes for a cause, the likeliest first for the credentials that were tried: when the server refused the
 * credential (`auth-rejected`), a key alone puts "Key not authorized" first and a password alone "Wrong
 * password" (a failure message quotes only the first fix).
 */
export function fixesFor(cause: SshCause, tried: { password: boolean; key: boolean }): string[] {
  const fix = SSH_CAUSE_INFO[cause].fix;
  if (cause !== 'auth-rejected' || tried.password === tried.key) return fix;
  const first = tried.key ? 'Key not authorized:' : 'Wrong password:';
  return [...fix.filter((f) => f.startsWith(first)), ...fix.filter((f) => !f.startsWith(first))];
}
