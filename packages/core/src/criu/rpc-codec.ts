/**
 * Encoding of requests and validated decoding of responses. Wire objects keep CRIU's snake_case names so they can
 * be compared with CRIU's documentation and with recorded sessions; the typed, camelCase API is criu-options.ts.
 */
import { FerryError } from '../model/ferry-error';
import { CriuReq, CriuResp, REQ_TYPE, type ReqTypeName } from './rpc-schema';

export type WireOpts = Record<string, unknown> & { images_dir_fd: number };

export interface WireRequest {
  type: ReqTypeName;
  opts?: WireOpts;
  notify_success?: boolean;
  keep_open?: boolean;
  features?: { mem_track?: boolean; lazy_pages?: boolean; pidfd_store?: boolean };
  pid?: number;
}

export interface WireResponse {
  type: ReqTypeName;
  success: boolean;
  dump?: { restored?: boolean };
  restore?: { pid: number };
  notify?: { script?: string; pid?: number };
  ps?: { address?: string; port?: number; pid?: number; fd?: number };
  cr_errno?: number;
  cr_errmsg?: string;
  features?: { mem_track?: boolean; lazy_pages?: boolean; pidfd_store?: boolean };
  version?: { major_number: number; minor_number: number; sublevel?: number; extra?: number; gitid?: string; name?: string };
  status?: number;
}

const TYPE_NAMES = new Map<number, ReqTypeName>(
  (Object.entries(REQ_TYPE) as [ReqTypeName, number][]).map(([name, id]) => [id, name]),
);

/** The protobuf bytes of a criu_req; throws TypeError for a request CRIU would reject as malformed. */
export function encodeRequest(request: WireRequest): Buffer {
  const payload: Record<string, unknown> = { ...request, type: REQ_TYPE[request.type] };
  if (request.opts && typeof request.opts.images_dir_fd !== 'number') {
    throw new TypeError('CRIU request opts need images_dir_fd');
  }
  const problem = CriuReq.verify(payload);
  if (problem) throw new TypeError(`invalid CRIU request: ${problem}`);
  return Buffer.from(CriuReq.encode(CriuReq.fromObject(payload)).finish());
}

function protocolError(message: string, cause?: unknown): FerryError {
  return new FerryError('ERR_CRIU_PROTOCOL', `CRIU sent an invalid RPC response: ${message}`, {
    hint: 'Check that the criu binary in PATH is CRIU >= 4.2 (ferry doctor).',
    cause,
  });
}

/** A criu_resp from its protobuf bytes; ERR_CRIU_PROTOCOL when they are not one. */
export function decodeResponse(data: Uint8Array): WireResponse {
  let raw: Record<string, unknown>;
  try {
    raw = CriuResp.toObject(CriuResp.decode(data), { defaults: false, longs: Number }) as Record<string, unknown>;
  } catch (err) {
    throw protocolError((err as Error).message, err);
  }
  if (typeof raw.type !== 'number') throw protocolError('missing required field "type"');
  if (typeof raw.success !== 'boolean') throw protocolError('missing required field "success"');
  const type = TYPE_NAMES.get(raw.type);
  if (!type) throw protocolError(`unknown response type ${raw.type}`);
  const restore = raw.restore as { pid?: number } | undefined;
  if (restore && typeof restore.pid !== 'number') throw protocolError('restore response without pid');
  const version = raw.version as { major_number?: number; minor_number?: number } | undefined;
  if (version && (typeof version.major_number !== 'number' || typeof version.minor_number !== 'number')) {
    throw protocolError('version response without major/minor number');
  }
  return { ...raw, type } as WireResponse;
}

/** The other direction, for fakes that play CRIU in tests and for reading recorded sessions. */
export function decodeRequest(data: Uint8Array): WireRequest {
  const raw = CriuReq.toObject(CriuReq.decode(data), { defaults: false, longs: Number }) as Record<string, unknown>;
  const type = TYPE_NAMES.get(raw.type as number);
  if (!type) throw new TypeError(`unknown request type ${String(raw.type)}`);
  return { ...raw, type } as WireRequest;
}

export function encodeResponse(response: WireResponse): Buffer {
  const payload: Record<string, unknown> = { ...response, type: REQ_TYPE[response.type] };
  return Buffer.from(CriuResp.encode(CriuResp.fromObject(payload)).finish());
}
