/**
 * The hand-over between the OVA writer (ova-pack.ts) and a publisher that uploads the archive while it is
 * being packed (issue 16). The OVA is laid out as: a head of fixed length reserved first (tar headers, the
 * OVF descriptor, the manifest and the disk's tar header — bytes only known when the disk is complete),
 * the body (the streamOptimized VMDK, append-only: every byte is final when handed over), and a tail (the
 * tar padding and the end-of-archive blocks).
 */

/** The bytes known only when packing ends, with the whole archive's identity. */
export interface OvaFinalParts {
  /** Bytes [0, head.length) of the OVA. */
  head: Buffer;
  /** Bytes [size - tail.length, size) of the OVA. */
  tail: Buffer;
  /** Byte size of the whole OVA. */
  size: number;
  /** SHA-256 (hex) of the whole OVA. */
  sha256: string;
}

/** Receives an OVA while ova-pack writes it. */
export interface OvaPartSink {
  /**
   * Final bytes of the archive at [offset, offset + bytes.length), handed over in increasing offset order
   * and contiguous, starting at the head's length. Awaited: a slow sink slows packing down (backpressure);
   * a rejection aborts the packing. The buffer may be reused after the promise settles: copy what is kept.
   */
  body(offset: number, bytes: Buffer): Promise<void>;
  /** Called once after the last body call, when the OVA file is complete (before it is renamed into place). */
  finish(final: OvaFinalParts): Promise<void>;
  /** Called when packing fails or is cancelled after the first body call; the sink must publish nothing. */
  abort(reason: Error): Promise<void>;
}
