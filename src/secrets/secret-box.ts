import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

const VERSION = 1;
const IV_BYTES = 12;
const TAG_BYTES = 16;

/**
 * Seals secrets with AES-256-GCM. The secret's name is bound in as associated data, so a ciphertext
 * copied onto another secret's row fails to open instead of leaking under the wrong name.
 */
export class SecretBox {
  private constructor(private readonly key: Buffer) {}

  static fromKey(key: Buffer): SecretBox {
    if (key.length !== 32) throw new Error('the secret key must be 32 bytes (base64 of 32 random bytes)');
    return new SecretBox(key);
  }

  /**
   * The key from `CISTERN_SECRET_KEY` (base64) if set, else from `keyFile`, which is created with
   * mode 0600 on first start.
   */
  static async load(keyFile: string, env: NodeJS.ProcessEnv = process.env): Promise<SecretBox> {
    const fromEnv = env.CISTERN_SECRET_KEY;
    if (fromEnv) return SecretBox.fromKey(Buffer.from(fromEnv, 'base64'));
    try {
      return SecretBox.fromKey(Buffer.from((await readFile(keyFile, 'utf8')).trim(), 'base64'));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    await mkdir(dirname(keyFile), { recursive: true });
    const key = randomBytes(32);
    // 'wx': never overwrite a key another process wrote meanwhile; losing it would orphan every secret.
    await writeFile(keyFile, `${key.toString('base64')}\n`, { mode: 0o600, flag: 'wx' }).catch(async (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EEXIST') throw err;
    });
    await chmod(keyFile, 0o600);
    return SecretBox.fromKey(Buffer.from((await readFile(keyFile, 'utf8')).trim(), 'base64'));
  }

  seal(name: string, plaintext: string): Buffer {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    cipher.setAAD(Buffer.from(name, 'utf8'));
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return Buffer.concat([Buffer.from([VERSION]), iv, body, cipher.getAuthTag()]);
  }

  open(name: string, sealed: Buffer): string {
    if (sealed.length < 1 + IV_BYTES + TAG_BYTES || sealed[0] !== VERSION) {
      throw new Error(`secret ${name} is not in a format this Cistern can read`);
    }
    const iv = sealed.subarray(1, 1 + IV_BYTES);
    const tag = sealed.subarray(sealed.length - TAG_BYTES);
    const decipher = createDecipheriv('aes-256-gcm', this.key, iv);
    decipher.setAAD(Buffer.from(name, 'utf8'));
    decipher.setAuthTag(tag);
    try {
      return Buffer.concat([decipher.update(sealed.subarray(1 + IV_BYTES, sealed.length - TAG_BYTES)), decipher.final()]).toString('utf8');
    } catch {
      throw new Error(`secret ${name} cannot be decrypted: wrong key, or the stored value was altered`);
    }
  }
}
