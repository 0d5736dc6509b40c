import fs from 'node:fs/promises';
import path from 'node:path';
import { requireSigningKey } from './config.ts';
import {
  isSafeRelativePath,
  listFiles,
  MANIFEST_FILE,
  sha256,
  SIGNATURE_FILE,
  signatureMatches,
  type Manifest,
} from './manifest.ts';

export interface VerifyResult {
  ok: boolean;
  /** In the manifest, present, but with other bytes. */
  changed: string[];
  /** Present but not in the manifest. */
  added: string[];
  /** In the manifest but missing. */
  removed: string[];
  /** manifest.sig missing, malformed, or not the HMAC of manifest.json under the key. */
  badSignature: boolean;
  /** Anything else that makes the bundle unusable (unreadable manifest, unsafe paths). */
  errors: string[];
}

/**
 * Checks a bundle written by exportEvidence: the manifest's signature, then every file against the manifest's
 * size and sha256, and no file more or fewer. The file comparison runs even when the signature is bad, so the
 * report says what differs from the manifest as it stands.
 */
export async function verifyEvidence(dir: string, key: string | undefined): Promise<VerifyResult> {
  const signingKey = requireSigningKey(key);
  const result: VerifyResult = { ok: false, changed: [], added: [], removed: [], badSignature: false, errors: [] };

  let manifestBytes: Buffer;
  try {
    manifestBytes = await fs.readFile(path.join(dir, MANIFEST_FILE));
  } catch {
    result.badSignature = true;
    result.errors.push(`${MANIFEST_FILE} is missing`);
    return result;
  }
  let signature = '';
  try {
    signature = (await fs.readFile(path.join(dir, SIGNATURE_FILE), 'utf8')).trim();
  } catch {
    result.errors.push(`${SIGNATURE_FILE} is missing`);
  }
  result.badSignature = !signatureMatches(manifestBytes, signingKey, signature);

  let manifest: Manifest;
  try {
    manifest = JSON.parse(manifestBytes.toString('utf8')) as Manifest;
    if (!Array.isArray(manifest.files)) throw new Error('no files list');
  } catch (error) {
    result.errors.push(
      `${MANIFEST_FILE} is not a valid manifest: ${error instanceof Error ? error.message : String(error)}`
    );
    return result;
  }

  const listed = new Map<string, { size: number; sha256: string }>();
  for (const entry of manifest.files) {
    if (
      typeof entry?.path !== 'string' ||
      !isSafeRelativePath(entry.path) ||
      entry.path === MANIFEST_FILE ||
      entry.path === SIGNATURE_FILE
    ) {
      result.errors.push(`manifest lists an unacceptable path: ${JSON.stringify(entry?.path)}`);
      continue;
    }
    listed.set(entry.path, { size: entry.size, sha256: entry.sha256 });
  }

  const present = (await listFiles(dir)).filter((p) => p !== MANIFEST_FILE && p !== SIGNATURE_FILE);
  const presentSet = new Set(present);
  for (const rel of present) {
    const expected = listed.get(rel);
    if (!expected) {
      result.added.push(rel);
      continue;
    }
    const full = path.join(dir, rel);
    const stat = await fs.lstat(full);
    if (!stat.isFile()) {
      result.changed.push(rel); // a symlink or device where a file was signed
      continue;
    }
    const bytes = await fs.readFile(full);
    if (bytes.length !== expected.size || sha256(bytes) !== expected.sha256) result.changed.push(rel);
  }
  for (const rel of listed.keys()) if (!presentSet.has(rel)) result.removed.push(rel);
  result.removed.sort();

  result.ok =
    !result.badSignature &&
    result.changed.length === 0 &&
    result.added.length === 0 &&
    result.removed.length === 0 &&
    result.errors.length === 0;
  return result;
}

/** Human-readable lines for a failed verification. */
export function describeVerification(result: VerifyResult): string[] {
  const lines: string[] = [];
  if (result.badSignature) lines.push('signature: manifest.json does not match manifest.sig under this key');
  for (const e of result.errors) lines.push(`error: ${e}`);
  for (const f of result.changed) lines.push(`changed: ${f}`);
  for (const f of result.added) lines.push(`added: ${f}`);
  for (const f of result.removed) lines.push(`removed: ${f}`);
  return lines;
}
