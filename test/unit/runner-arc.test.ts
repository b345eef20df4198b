/**
 * Lint of the actions-runner-controller files in runner-setup/arc/: every YAML document parses,
 * Kubernetes manifests carry apiVersion/kind/metadata (and a spec or data where the kind needs
 * one), the runner scale set values give the runner pod /dev/kvm, and the files agree with each
 * other (namespace, secret name, device resource name, node label).
 */
import { describe, expect, it } from '@jest/globals';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';

const ARC_DIR = fileURLToPath(new URL('../../runner-setup/arc/', import.meta.url));

type Yaml = Record<string, unknown>;

interface ArcDocument {
  file: string;
  index: number;
  value: Yaml;
}

/** All YAML documents of runner-setup/arc, failing on any parse error or warning. */
function loadArcDocuments(): ArcDocument[] {
  const docs: ArcDocument[] = [];
  for (const file of readdirSync(ARC_DIR).filter((f) => f.endsWith('.yaml')).sort()) {
    const parsed = parseAllDocuments(readFileSync(join(ARC_DIR, file), 'utf8'), { prettyErrors: true });
    if (!Array.isArray(parsed)) throw new Error(`${file}: not a YAML stream`);
    parsed.forEach((doc, index) => {
      const problems = [...doc.errors, ...doc.warnings].map((e) => e.message);
      if (problems.length > 0) throw new Error(`${file}#${index}: ${problems.join('; ')}`);
      const value = doc.toJS() as unknown;
      if (value === null || typeof value !== 'object' || Array.isArray(value)) {
        throw new Error(`${file}#${index}: a document must be a mapping`);
      }
      docs.push({ file, index, value: value as Yaml });
    });
  }
  return docs;
}

const obj = (v: unknown, where: string): Yaml => {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error(`${where}: expected a mapping`);
  return v as Yaml;
};
const list = (v: unknown, where: string): unknown[] => {
  if (!Array.isArray(v)) throw new Error(`${where}: expected a list`);
  return v;
};

const docs = loadArcDocuments();
const manifests = docs.filter((d) => 'kind' in d.value || 'apiVersion' in d.value);
const scaleSets = docs.filter((d) => d.file.endsWith('.values.yaml'));
const byKind = (kind: string) => manifests.filter((d) => d.value.kind === kind);

/** Kinds whose objects need a spec; Namespace/Secret/ConfigMap carry none (or data instead). */
const KINDS_WITH_SPEC = new Set(['DaemonSet', 'Deployment', 'AutoscalingRunnerSet', 'StatefulSet']);
const K8S_NAME = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

function runnerContainer(values: Yaml, where: string): Yaml {
  const spec = obj(obj(values.template, `${where} template`).spec, `${where} template.spec`);
  const containers = list(spec.containers, `${where} template.spec.containers`).map((c, i) => obj(c, `${where} container ${i}`));
  const runner = containers.find((c) => c.name === 'runner');
  if (!runner) throw new Error(`${where}: no container named "runner" (the chart requires it)`);
  return runner;
}

/** The extended resource names the device plugin DaemonSet advertises ("<domain>/<device name>"). */
function advertisedResources(): string[] {
  const names: string[] = [];
  for (const ds of byKind('DaemonSet')) {
    const spec = obj(obj(obj(ds.value.spec, 'spec').template, 'template').spec, 'template.spec');
    for (const c of list(spec.containers, 'containers').map((x) => obj(x, 'container'))) {
      const args = list(c.args ?? [], 'args').map(String);
      const domain = args[args.indexOf('--domain') + 1];
      args.forEach((arg, i) => {
        if (args[i - 1] !== '--device') return;
        const device = obj(parseAllDocuments(arg)[0]?.toJS(), `${ds.file} --device`);
        names.push(`${domain}/${String(device.name)}`);
      });
    }
  }
  return names;
}

describe('runner-setup/arc manifests', () => {
  it('has the manifests the docs refer to', () => {
    expect(docs.map((d) => d.file)).toEqual(
      expect.arrayContaining([
        'namespace.yaml',
        'github-app-secret.example.yaml',
        'kvm-device-plugin.yaml',
        'runner-scale-set-kvm.values.yaml',
        'runner-scale-set-privileged.values.yaml',
      ]),
    );
  });

  it.each(manifests.map((d) => [`${d.file}#${d.index}`, d] as const))('%s has apiVersion, kind, metadata and a body', (_, d) => {
    expect(typeof d.value.apiVersion).toBe('string');
    expect(typeof d.value.kind).toBe('string');
    const metadata = obj(d.value.metadata, `${d.file} metadata`);
    expect(String(metadata.name)).toMatch(K8S_NAME);
    expect(obj(metadata.labels, `${d.file} labels`)['app.kubernetes.io/part-of']).toBe('labforge');
    if (KINDS_WITH_SPEC.has(String(d.value.kind))) expect(typeof d.value.spec).toBe('object');
    if (d.value.kind === 'Secret') expect(typeof (d.value.stringData ?? d.value.data)).toBe('object');
  });

  it('the device plugin DaemonSet selects its own pods and advertises /dev/kvm', () => {
    const [ds] = byKind('DaemonSet');
    const spec = obj(ds.value.spec, 'spec');
    const selector = obj(obj(spec.selector, 'selector').matchLabels, 'matchLabels');
    const podLabels = obj(obj(obj(spec.template, 'template').metadata, 'template.metadata').labels, 'pod labels');
    for (const [k, v] of Object.entries(selector)) expect(podLabels[k]).toBe(v);
    expect(JSON.stringify(spec)).toContain('/dev/kvm');
    expect(advertisedResources()).toEqual(['squat.ai/kvm']);
  });
});

describe('runner scale set values', () => {
  const namespace = String(obj(byKind('Namespace')[0].value.metadata, 'namespace').name);
  const secret = obj(byKind('Secret')[0].value.metadata, 'secret');

  it.each(scaleSets.map((d) => [d.file, d] as const))('%s has the chart settings a scale set needs', (_, d) => {
    expect(String(d.value.githubConfigUrl)).toMatch(/^https:\/\/[^/]+\/[^/]+(\/[^/]+)?$/);
    expect(d.value.githubConfigSecret).toBe(secret.name);
    expect(String(d.value.runnerScaleSetName)).toMatch(/^labforge-kvm/);
    expect(Number(d.value.minRunners)).toBeGreaterThanOrEqual(0);
    expect(Number(d.value.maxRunners)).toBeGreaterThanOrEqual(Number(d.value.minRunners));
    const runner = runnerContainer(d.value, d.file);
    expect(runner.command).toEqual(['/home/runner/run.sh']);
    const env = list(runner.env, 'env').map((e) => obj(e, 'env var'));
    expect(env.map((e) => e.name)).toEqual(expect.arrayContaining(['PACKER_CACHE_DIR', 'PACKER_PLUGIN_PATH', 'TMPDIR']));
    const template = obj(d.value.template, 'template');
    expect(obj(obj(template.metadata, 'metadata').labels, 'labels')['app.kubernetes.io/part-of']).toBe('labforge');
    expect(obj(obj(template.spec, 'spec').nodeSelector, 'nodeSelector')['labforge.dev/kvm']).toBe('true');
  });

  it('the device-plugin variant requests the advertised KVM resource and is not privileged', () => {
    const d = scaleSets.find((s) => s.file === 'runner-scale-set-kvm.values.yaml');
    if (!d) throw new Error('runner-scale-set-kvm.values.yaml missing');
    const runner = runnerContainer(d.value, d.file);
    const limits = obj(obj(runner.resources, 'resources').limits, 'limits');
    const kvmResources = Object.keys(limits).filter((k) => k.endsWith('/kvm'));
    expect(kvmResources).toEqual(advertisedResources());
    expect(limits[kvmResources[0]]).toBe('1');
    const sc = obj(runner.securityContext, 'securityContext');
    expect(sc.privileged).not.toBe(true);
    expect(sc.allowPrivilegeEscalation).toBe(false);
    expect(sc.runAsNonRoot).toBe(true);
    // no hostPath at all: the device plugin hands over /dev/kvm and nothing else
    expect(JSON.stringify(d.value)).not.toContain('hostPath');
  });

  it('the privileged variant mounts /dev/kvm from the host and says why it is risky', () => {
    const d = scaleSets.find((s) => s.file === 'runner-scale-set-privileged.values.yaml');
    if (!d) throw new Error('runner-scale-set-privileged.values.yaml missing');
    const runner = runnerContainer(d.value, d.file);
    expect(obj(runner.securityContext, 'securityContext').privileged).toBe(true);
    const mounts = list(runner.volumeMounts, 'volumeMounts').map((m) => obj(m, 'mount'));
    const kvmMount = mounts.find((m) => m.mountPath === '/dev/kvm');
    expect(kvmMount).toBeDefined();
    const volumes = list(obj(obj(d.value.template, 'template').spec, 'spec').volumes, 'volumes').map((v) => obj(v, 'volume'));
    const kvmVolume = volumes.find((v) => v.name === kvmMount?.name);
    expect(obj(kvmVolume?.hostPath, 'hostPath')).toEqual({ path: '/dev/kvm', type: 'CharDevice' });
    expect(readFileSync(join(ARC_DIR, d.file), 'utf8')).toMatch(/Security trade-off/);
  });

  it('namespaced manifests live in the runners namespace or kube-system', () => {
    for (const d of manifests.filter((m) => m.value.kind !== 'Namespace')) {
      expect([namespace, 'kube-system']).toContain(obj(d.value.metadata, 'metadata').namespace);
    }
    expect(obj(byKind('Secret')[0].value.metadata, 'secret').namespace).toBe(namespace);
  });
});
