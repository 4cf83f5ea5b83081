/**
 * The destination's network namespace made before the freeze (RuntimeAdapter.prepareNetwork), so that the frozen
 * restore only joins it: creating a namespace, its veth, addresses and the packet hold takes a dozen `ip`,
 * `nsenter` and `iptables-restore` processes, 0.2-0.5 s on the project's machine (the benchmark's restore steps).
 *
 * Made exactly as the restore would make it (createNetns), bridge ends down: the source still runs with the same
 * addresses and MAC, so nothing of the namespace may reach the LAN yet, not even an ARP answer. The packet hold is
 * started at once (its record in owned.json first, like every other step). Its bridge ends come up behind the hold
 * once the source is fenced (raisePreparedNetns, asked by the source right after its fence), or at the latest when
 * the restore joins it (joinPreparedNetns, from prepareRuncRestore). owned.json names all of it under the
 * container's name, so remove() and any recovery that removes the copy remove the namespace too.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { FerryError } from '../model/ferry-error';
import type { Reverter } from './adapter-common';
import { assertNetnsFree, createNetns, netnsPath, raiseUplink, type NetnsInterface } from './runc-netns';
import type { OwnedResources, RuncRestoreDeps } from './runc-restore';
import type { PrepareNetworkResult, RaiseNetworkResult } from './runtime-adapter';

/** prepareNetwork for runc: the namespace `nsPath` names, re-created here with `interfaces`, held, its links down. */
export async function prepareRuncNetwork(name: string, nsPath: string, interfaces: NetnsInterface[], deps: RuncRestoreDeps): Promise<PrepareNetworkResult> {
  if (existsSync(nsPath)) return { prepared: false, reason: `${nsPath} exists on this host: the restore joins it` };
  if (await deps.containers.exists(name)) {
    throw new FerryError('ERR_RUNTIME_NAME_TAKEN', `runc already has a container named ${name}`, { hint: `Remove it first (\`runc delete --force ${name}\`).`, details: { name } });
  }
  // Whatever an earlier container of that name left is stale (as at a restore).
  await releaseOwned(deps, name);
  const nsName = `${deps.netnsPrefix}${name}`;
  assertNetnsFree(nsName);
  const owned: OwnedResources = { netns: nsName, prepared: { interfaces } };
  deps.store.write(name, owned);
  try {
    const path = await createNetns(deps.tools, nsName, interfaces, deps.uplink, (peers) => {
      owned.heldUplink = peers;
      deps.store.write(name, owned);
    });
    const held = owned.heldUplink?.length && deps.holds ? await deps.holds.hold(name, path, owned) : false;
    return { prepared: true, held };
  } catch (err) {
    await releaseOwned(deps, name, owned);
    throw err;
  }
}

/**
 * The source is fenced: the prepared namespace's bridge ends come up behind its hold, so the clients' segments of the
 * whole freeze are queued here for the restored sockets instead of lost (docs/network-switchover.md, "hold-fence").
 * Only with a hold this process runs: unheld, the namespace's kernel would answer them with resets (no sockets yet).
 */
export async function raisePreparedNetns(name: string, deps: RuncRestoreDeps): Promise<RaiseNetworkResult> {
  const owned = deps.store.read(name);
  if (!owned?.prepared) return { raised: false, reason: 'no namespace was prepared for it' };
  if (!deps.holds?.holding(name)) return { raised: false, reason: 'its traffic is not held here: the bridge ends stay down until the release' };
  const raise = raiseOwnedUplink(owned, deps);
  if (!raise) return { raised: false, reason: 'it has no bridge ends down' };
  await deps.holds.raiseHeld(name, owned, raise);
  return { raised: true };
}

/** Raises the bridge ends owned.json has down (heldUplink); undefined when there are none, or no uplink. */
export function raiseOwnedUplink(owned: OwnedResources, deps: Pick<RuncRestoreDeps, 'tools' | 'uplink'>): (() => Promise<void>) | undefined {
  const peers = owned.heldUplink ?? [];
  const uplink = deps.uplink;
  return peers.length > 0 && uplink ? () => raiseUplink(deps.tools, uplink, peers) : undefined;
}

/**
 * owned.json of a namespace prepareNetwork made for `name` with these interfaces, if it is still there and stands in
 * for the config's `nsPath` (which does not exist here, or is that very namespace: its name may be the one the
 * source's namespace had).
 */
export function adoptPreparedNetns(name: string, nsPath: string, interfaces: NetnsInterface[], deps: RuncRestoreDeps): OwnedResources | undefined {
  const owned = deps.store.read(name);
  if (!owned?.prepared || !owned.netns) return undefined;
  const made = netnsPath(owned.netns);
  if (!existsSync(made) || (existsSync(nsPath) && resolve(nsPath) !== made)) return undefined;
  // The container's interfaces changed between the preparation and the dump: the namespace is made again.
  return JSON.stringify(owned.prepared.interfaces) === JSON.stringify(interfaces) ? owned : undefined;
}

/**
 * The restore joins the namespace prepareNetwork made: its traffic is held by this process (the bridge ends come up
 * behind the hold now that the source is fenced, unless raisePreparedNetns did already), or, without a hold, the
 * bridge ends stay down until the release (holdNetwork) or come up after the restore.
 */
export async function joinPreparedNetns(name: string, owned: OwnedResources, deps: RuncRestoreDeps, afterRestore: (() => Promise<void>)[], holdNetwork: boolean, revert: Reverter): Promise<string> {
  delete owned.prepared;
  deps.store.write(name, owned);
  revert.add(() => deps.holds?.abort(name));
  const raise = raiseOwnedUplink(owned, deps);
  if (raise) {
    if (deps.holds?.holding(name)) await deps.holds.raiseHeld(name, owned, raise);
    else if (!holdNetwork) {
      afterRestore.push(raise);
      delete owned.heldUplink;
      deps.store.write(name, owned);
    }
  }
  return netnsPath(owned.netns!);
}

/** Drops what the adapter holds for `name`: this process's packet hold, then owned.json's namespace and bundle copy. */
export async function releaseOwned(deps: Pick<RuncRestoreDeps, 'holds' | 'store'>, name: string, known?: OwnedResources): Promise<void> {
  await deps.holds?.abort(name);
  await deps.store.release(name, known);
}
