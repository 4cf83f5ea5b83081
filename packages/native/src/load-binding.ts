import { existsSync } from 'node:fs';
import * as path from 'node:path';

import type { RawBinding } from './binding';
import { NativeError } from './native-error';

// src/ under jest, dist/ once compiled: the package root is one level up either way.
const packageRoot = path.resolve(__dirname, '..');

/** Where node-gyp puts the addon, in the order they are tried. */
export const bindingPaths: readonly string[] = ['Release', 'Debug'].map((config) =>
  path.join(packageRoot, 'build', config, 'ferry_native.node'),
);

/**
 * Loads the addon from the first path that works and hands it the NativeError class. The error, if none does,
 * lists every path with the reason it failed and says how to build the addon.
 */
export function loadBinding(paths: readonly string[] = bindingPaths): RawBinding {
  const tried: string[] = [];
  for (const file of paths) {
    if (!existsSync(file)) {
      tried.push(`  ${file}: not found`);
      continue;
    }
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const binding = require(file) as RawBinding;
      binding.setErrorClass(NativeError);
      return binding;
    } catch (error) {
      tried.push(`  ${file}: ${(error as Error).message.split('\n')[0]}`);
    }
  }
  throw new Error(
    `@ferry/native: cannot load the native addon ferry_native.node. Tried:\n${tried.join('\n')}\n` +
      `Build it: run \`npm install\` at the repository root, or \`npx node-gyp rebuild\` in ${packageRoot} ` +
      `(needs g++, make, python3 and libxxhash-dev).`,
  );
}

let loaded: RawBinding | undefined;

/**
 * The addon, loaded on first use: importing @ferry/native for its types or handles never needs the compiled addon,
 * so packages whose unit tests never touch it do not depend on a build.
 */
export function binding(): RawBinding {
  loaded ??= loadBinding();
  return loaded;
}
