import { describe, expect, it } from '@jest/globals';
import { ArtifactCollector, LineSplitter, parseMachineReadableLine, phaseOf, sshPortFrom } from '../../actions/lib/packer-machine-readable.js';

describe('parsing -machine-readable lines (as Packer 1.6.6 prints them)', () => {
  it('reads a ui line and undoes the comma and newline escapes', () => {
    expect(parseMachineReadableLine('1795654796,,ui,message,    qemu.tiny: The VM will be run headless%!(PACKER_COMMA) without a GUI.\\n    next line')).toEqual({
      kind: 'ui',
      time: new Date(1795654796000),
      target: '',
      level: 'message',
      text: '    qemu.tiny: The VM will be run headless, without a GUI.\n    next line',
    });
  });

  it('reads errors and error counts', () => {
    expect(parseMachineReadableLine('1795654767,null.one,error,Script exited with non-zero exit status: 3.')).toMatchObject({ kind: 'error', target: 'null.one', text: 'Script exited with non-zero exit status: 3.' });
    expect(parseMachineReadableLine('1795654767,,error-count,1')).toMatchObject({ kind: 'error-count', count: 1 });
  });

  it('ignores lines that are not machine-readable', () => {
    expect(parseMachineReadableLine('plain text from a plugin')).toBeUndefined();
    expect(parseMachineReadableLine('')).toBeUndefined();
  });

  it('collects artifacts with their files', () => {
    const c = new ArtifactCollector();
    for (const l of [
      '1795654844,qemu.tiny,artifact-count,1',
      '1795654844,qemu.tiny,artifact,0,builder-id,transcend.qemu',
      '1795654844,qemu.tiny,artifact,0,id,VM',
      '1795654844,qemu.tiny,artifact,0,string,VM files in directory: /tmp/pk/qout',
      '1795654844,qemu.tiny,artifact,0,files-count,2',
      '1795654844,qemu.tiny,artifact,0,file,0,/tmp/pk/qout/tiny-guest.qcow2',
      '1795654844,qemu.tiny,artifact,0,file,1,/tmp/pk/qout/a%!(PACKER_COMMA)b.txt',
      '1795654844,qemu.tiny,artifact,0,end',
    ]) c.add(parseMachineReadableLine(l)!);
    expect(c.artifacts).toEqual([{ build: 'qemu.tiny', builderId: 'transcend.qemu', id: 'VM', description: 'VM files in directory: /tmp/pk/qout', files: ['/tmp/pk/qout/tiny-guest.qcow2', '/tmp/pk/qout/a,b.txt'] }]);
  });
});

describe('phases and the SSH port', () => {
  it('maps the qemu builder’s lines to phases', () => {
    expect(phaseOf('==> qemu.tiny: Retrieving ISO')).toBe('prepare');
    expect(phaseOf('==> qemu.tiny: Starting VM, booting disk image')).toBe('boot');
    expect(phaseOf('==> qemu.tiny: Waiting for SSH to become available...')).toBe('wait-ssh');
    expect(phaseOf('==> qemu.tiny: Connected to SSH!')).toBe('provision');
    expect(phaseOf('==> qemu.tiny: Gracefully halting virtual machine...')).toBe('shutdown');
    expect(phaseOf('\n==> Builds finished. The artifacts of successful builds are:')).toBe('finish');
    expect(phaseOf('    qemu.tiny: some output')).toBeUndefined();
  });

  it('finds the forwarded SSH port in a UI line or a qemu command line in PACKER_LOG', () => {
    expect(sshPortFrom('==> qemu.tiny: Found port for communicator (SSH, WinRM, etc): 3039.')).toBe(3039);
    expect(sshPortFrom('2025/01/01 packer-builder-qemu: Executing /usr/bin/qemu-system-x86_64: []string{"-netdev", "user,id=user.0,hostfwd=tcp::4123-:22"}')).toBe(4123);
    expect(sshPortFrom('2026/11/26 01:34:52 packer-builder-null plugin: [INFO] Attempting SSH connection to 127.0.0.1:2299...')).toBe(2299);
    expect(sshPortFrom('==> qemu.tiny: Starting VM')).toBeUndefined();
  });

  it('splits a stream into lines across chunk boundaries', () => {
    const s = new LineSplitter();
    expect(s.push('a,b\nc,')).toEqual(['a,b']);
    expect(s.push('d\ne')).toEqual(['c,d']);
    expect(s.flush()).toEqual(['e']);
  });
});
