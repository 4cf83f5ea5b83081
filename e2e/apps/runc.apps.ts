/**
 * Real servers from Debian's packages in runc bundles built from the packages as shipped (bundle.js), moved from h1
 * to h2 with `ferry migrate --strategy auto` while their own load tool drives them from the LAN (apps-suite.ts).
 * FERRY_APPS=redis,nginx runs a subset.
 */
import { appsSuite } from './apps-suite';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { APPS } = require('./catalog');

appsSuite('runc', (process.env.FERRY_APPS ?? Object.keys(APPS).join(',')).split(',').filter(Boolean), 50);
