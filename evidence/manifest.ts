import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';

export const MANIFEST_FILE = 'manifest.json';
export const SIGNATURE_FILE = 'manifest.sig';
export const SIGNATURE_ALGORITHM = 'HMAC-SHA256';

export interface ManifestFile {
  path: string;
  size: number;
  sha256: string;
}

export interface Manifest {
  format: 'controlroom-evidence/1';
  tool: { name: string; version: string };
  generated_at: string;
  period: { from: string; to: string; end: 'exclusive' };
  dashboards: string[];
  signature: { algorithm: typeof SIGNATURE_ALGORITHM; file: typeof SIGNATURE_FILE };
  files: ManifestFile[];
}

export function sha256(bytes: Buffer): string {
  return crypto.createHash('sha256').update(bytes).digest('hex');
}

export function sign(manifestBytes: Buffer, key: string): string {
  return crypto.createHmac('sha256', key).update(manifestBytes).digest('hex');
}

export function signatureMatches(manifestBytes: Buffer, key: string, signatureHex: string): boolean {
  const expected = Buffer.from(sign(manifestBytes, key), 'hex');
  const given = /^[0-9a-f]{64}$/i.test(signatureHex) ? Buffer.from(signatureHex, 'hex') : Buffer.alloc(0);
  return given.length === expected.length && crypto.timingSafeEqual(given, expected);
}

/** Every regular file under dir, as sorted POSIX-style relative paths; symlinks and other entries are listed too. */
export async function listFiles(dir: string, rel = ''): Promise<string[]> {
  const entries = await fs.readdir(path.join(dir, rel), { withFileTypes: true });
  const out: string[] = [];
  for (const entry of entries) {
    const child = rel ? `${rel}/${entry.name}` : entry.name;
    if (entry.isDirectory()) out.push(...(await listFiles(dir, child)));
    else out.push(child);
  }
  return out.sort();
}

/** Rejects manifest paths that would leave the bundle directory. */
export function isSafeRelativePath(p: string): boolean {
  if (!p || p.startsWith('/') || p.includes('\\') || p.includes('\0')) return false;
  return p.split('/').every((part) => part !== '' && part !== '.' && part !== '..');
}
