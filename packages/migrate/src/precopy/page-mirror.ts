/**
 * The source's record of what one task's pages hold on the destination, by hash. A round asks it about every present
 * page (262k per GiB), so it is made for that: 2 MiB chunks of typed arrays, the hashes compared as two 32-bit
 * halves. A Map of page number → bigint cost ~2 µs per page (page numbers above 2^31 are heap numbers, each hash read
 * from a BigUint64Array allocates a BigInt): half a second per GiB on the main thread, in every round and in the
 * frozen one.
 */

const CHUNK_PAGES = 512;

interface Chunk {
  /** [lo, hi] of each page's hash. */
  hashes: Uint32Array;
  held: Uint8Array;
}

export class TaskPages {
  private readonly chunks = new Map<number, Chunk>();
  private lastNo = -1;
  private last: Chunk | undefined;

  /**
   * Whether the destination holds `page` with the hash at hashes[2k], hashes[2k+1] (a Uint32Array view of a round's
   * BigUint64Array of hashes).
   */
  holds(page: number, hashes: Uint32Array, k: number): boolean {
    const chunk = this.chunk(page, false);
    if (!chunk) return false;
    const at = page % CHUNK_PAGES;
    return chunk.held[at] === 1 && chunk.hashes[2 * at] === hashes[2 * k] && chunk.hashes[2 * at + 1] === hashes[2 * k + 1];
  }

  /** Notes that the destination now holds `page` with the hash at hashes[2k], hashes[2k+1]. */
  record(page: number, hashes: Uint32Array, k: number): void {
    const chunk = this.chunk(page, true)!;
    const at = page % CHUNK_PAGES;
    chunk.held[at] = 1;
    chunk.hashes[2 * at] = hashes[2 * k]!;
    chunk.hashes[2 * at + 1] = hashes[2 * k + 1]!;
  }

  private chunk(page: number, create: boolean): Chunk | undefined {
    const no = Math.floor(page / CHUNK_PAGES);
    if (no === this.lastNo && this.last) return this.last;
    let chunk = this.chunks.get(no);
    if (!chunk) {
      if (!create) return undefined;
      chunk = { hashes: new Uint32Array(2 * CHUNK_PAGES), held: new Uint8Array(CHUNK_PAGES) };
      this.chunks.set(no, chunk);
    }
    this.lastNo = no;
    this.last = chunk;
    return chunk;
  }
}

/** task (namespace pid) → its pages on the destination: the source's exact mirror of what the destination holds. */
export class SentPages {
  private readonly tasks = new Map<number, TaskPages>();

  forTask(task: number): TaskPages {
    let pages = this.tasks.get(task);
    if (!pages) this.tasks.set(task, (pages = new TaskPages()));
    return pages;
  }
}

/** A 32-bit view of a BigUint64Array of hashes, for TaskPages. */
export const hashHalves = (hashes: BigUint64Array): Uint32Array => new Uint32Array(hashes.buffer, hashes.byteOffset, hashes.length * 2);
