/** Fakes for other packages' tests (MemoryTransport arrives with the migration engine). */
export { duplexPair } from './testing/duplex-pair';
