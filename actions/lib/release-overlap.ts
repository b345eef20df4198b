/**
 * Publishing a release's OVA while it is being packed (issue 16): uploadRelease() is given the packing
 * instead of a finished file. The store's streamed upload (stream-upload.ts) is the packing's part sink, so
 * the body of the archive is on its way while the disk is still being compressed, and the head and tail go
 * last. The release's other files (.sha256, SBOM, metadata, catalog, portal) are written after the OVA is
 * published, as for an upload by path.
 */
import type { ArtifactStore, StreamUploadRequest, UploadFileResult } from './artifact-store.js';
import type { OvaFinalParts, OvaPartSink } from './ova-parts.js';
import type { BuildType } from './release-names.js';

/** An OVA being packed, handed to uploadRelease() in place of a path. */
export interface OvaPacking {
  /** The OVA file the packing writes; its name is the published file's name. */
  out: string;
  /** The labforge properties the packing writes into the OVA: the release's identity. */
  properties: { appliance: string; version: string; buildType: BuildType };
  /**
   * Runs the packing with `sink` as its part sink (PackOvaOptions.partSink); resolves when the OVA file is
   * complete. The sink gets every final body chunk, then finish() (or abort() when the packing fails).
   */
  run(sink: OvaPartSink): Promise<unknown>;
}

/**
 * Runs the packing with the store's streamed upload as its sink and resolves when the OVA is published
 * (verified, no-clobber). A packing that fails — before its first chunk too, or by ending without finish()
 * — aborts the upload, so nothing is published and staging is cleaned up by the store's rules.
 */
export async function uploadWhilePacking(store: ArtifactStore, packing: OvaPacking, req: StreamUploadRequest): Promise<UploadFileResult> {
  const upload = await store.uploadStream(req);
  let finished = false;
  const sink: OvaPartSink = {
    body: (offset, bytes) => upload.body(offset, bytes),
    finish: (final: OvaFinalParts) => {
      finished = true;
      return upload.finish(final);
    },
    abort: (reason) => upload.abort(reason),
  };
  try {
    await packing.run(sink);
    if (!finished) throw new Error(`packing ${packing.out} ended without handing over the archive's head and tail; nothing was published`);
  } catch (e) {
    await upload.abort(e instanceof Error ? e : new Error(String(e)));
    throw e;
  }
  return upload.done;
}
