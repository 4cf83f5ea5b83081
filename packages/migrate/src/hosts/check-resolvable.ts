/**
 * Whether a destination's address resolves, before anything is planned or moved to it (a typo in `drain --to` must
 * not show a plan, nor move half the containers).
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { FerryError } from '@ferry/core';
import type { Destination } from './resolve-host';

export async function checkResolvable(destination: Destination): Promise<void> {
  if (isIP(destination.address)) return;
  try {
    await lookup(destination.address);
  } catch (err) {
    throw new FerryError('ERR_TRANSPORT_UNKNOWN_HOST', `unknown host "${destination.name}" (${destination.address} does not resolve)`, {
      hint: 'Check the name, or add it to /etc/ferry/hosts.yaml (or a --hosts-file) or ~/.ssh/config.',
      cause: err,
    });
  }
}
