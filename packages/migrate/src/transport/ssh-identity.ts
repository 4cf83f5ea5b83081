/**
 * The private key to offer a destination, chosen the way OpenSSH would: the first of the identity files that exists,
 * belongs to us, is readable by nobody else, and needs no passphrase. Keys that fail one of these are skipped with
 * the reason kept: when authentication then fails (or nothing else is left to try), the error names them and how to
 * fix them. A passphrase-protected key is never a crash: ssh-agent (SSH_AUTH_SOCK) can sign with it instead.
 */
import { readFileSync, statSync } from 'node:fs';
import { utils } from 'ssh2';

export interface IdentityProblem {
  file: string;
  why: string;
  hint: string;
}

export interface Identity {
  /** The key to offer (undefined: none usable; the agent, if any, is all there is). */
  privateKey?: Buffer;
  file?: string;
  /** Files that exist but were skipped, with why. */
  problems: IdentityProblem[];
}

export function loadIdentity(files: readonly string[]): Identity {
  const problems: IdentityProblem[] = [];
  for (const file of files) {
    let stat;
    try {
      stat = statSync(file);
    } catch {
      continue; // not there: the next one (OpenSSH tries its default names the same way)
    }
    const uid = process.geteuid?.();
    if (uid !== undefined && stat.uid !== uid && stat.uid !== 0) {
      problems.push({ file, why: `${file} belongs to uid ${stat.uid}, not to ferry's user`, hint: `chown ${uid} ${file}` });
      continue;
    }
    if ((stat.mode & 0o077) !== 0) {
      const mode = (stat.mode & 0o777).toString(8).padStart(4, '0');
      problems.push({ file, why: `permissions ${mode} for ${file} are too open (others could read the key), so it is ignored`, hint: `chmod 600 ${file}` });
      continue;
    }
    let data: Buffer;
    try {
      data = readFileSync(file);
    } catch (err) {
      problems.push({ file, why: `${file} cannot be read (${(err as Error).message})`, hint: `Check ${file}.` });
      continue;
    }
    const parsed = utils.parseKey(data);
    if (parsed instanceof Error) {
      problems.push(
        /passphrase|encrypted/i.test(parsed.message)
          ? { file, why: `${file} is protected by a passphrase`, hint: `Load it into ssh-agent (\`ssh-add ${file}\`, with SSH_AUTH_SOCK set for ferry), or use a key without a passphrase.` }
          : { file, why: `${file} is not a private key ferry can read (${parsed.message})`, hint: 'Point identityFile (hosts file) or IdentityFile (~/.ssh/config) at an OpenSSH private key.' },
      );
      continue;
    }
    return { privateKey: data, file, problems };
  }
  return { problems };
}
