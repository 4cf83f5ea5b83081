/**
 * The source's pages for post-copy, read by ferry from the frozen tasks (process_vm_readv), not served by CRIU's page
 * server: CRIU's death, or a guardian's, loses nothing while the tasks stay frozen (source-hold.ts). A task is named
 * as in the images (its pid in the container's PID namespace) and found here by /proc/PID/status NSpid.
 *
 * Reading goes through core's memory module (process_vm_readv of @ferry/native).
 */
import { allocPageAligned, containerTasks, Freezer, FerryError, readMemory } from '@ferry/core';
import type { GetRequest } from './link-frames';

const PAGE = 4096;

export interface FrozenSourceOptions {
  /** Host pid of the container's init. */
  initPid: number;
  /** The container's freezer cgroup: every read checks that it is (still) frozen. */
  freezerPath: string;
}

export class FrozenSourceMemory {
  private constructor(
    private readonly hostPids: ReadonlyMap<number, number>,
    private readonly freezer: Freezer,
  ) {}

  /** Maps the container's tasks (image pid → host pid). Throws ERR_POSTCOPY_SOURCE_LOST when there are none. */
  static async open(options: FrozenSourceOptions): Promise<FrozenSourceMemory> {
    const tasks = await containerTasks(options.initPid);
    if (tasks.length === 0) throw lost(`the source container's init (pid ${options.initPid}) is gone`);
    return new FrozenSourceMemory(new Map(tasks.map((t) => [t.vpid, t.pid])), Freezer.at(options.freezerPath));
  }

  /** Image pid → host pid of every task found. */
  get tasks(): ReadonlyMap<number, number> {
    return this.hostPids;
  }

  /**
   * The pages asked for, read from the frozen task. Throws ERR_POSTCOPY_SOURCE_LOST when the task is unknown or
   * gone, when the cgroup is not frozen (its memory may have changed since the dump), or when a page cannot be read.
   */
  async read(request: Pick<GetRequest, 'pid' | 'vaddr' | 'nrPages'>): Promise<Buffer> {
    const hostPid = this.hostPids.get(request.pid);
    if (hostPid === undefined) throw lost(`task ${request.pid} of the images is not among the frozen source's tasks`);
    if (this.freezer.state() !== 'frozen') throw lost(`the source container is not frozen (${this.freezer.path}): its memory is no longer the dumped one`);
    const into = allocPageAligned(request.nrPages * PAGE);
    let result;
    try {
      result = await readMemory(hostPid, [{ address: request.vaddr, length: request.nrPages * PAGE }], { into });
    } catch (cause) {
      throw lost(`cannot read task ${request.pid} (host pid ${hostPid}): ${(cause as Error).message}`, cause);
    }
    if (result.unreadable.length > 0) {
      throw lost(`task ${request.pid} has no page at 0x${result.unreadable[0]!.address.toString(16)}, which its dump left for later`);
    }
    // Checked again after the read: a thaw during it would make the pages suspect.
    if (this.freezer.state() !== 'frozen') throw lost(`the source container was thawed while its pages were read`);
    return result.data;
  }
}

function lost(message: string, cause?: unknown): FerryError {
  return new FerryError('ERR_POSTCOPY_SOURCE_LOST', message, {
    hint: 'The pages the destination still needs are gone with the source; the destination copy cannot run on.',
    cause,
  });
}
