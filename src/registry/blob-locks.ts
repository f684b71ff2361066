import { ProcessLocks } from '../storage/metadata/process-locks.ts';

/**
 * One lock per blob digest. Garbage collection deletes a blob only while holding its lock, and every path
 * that makes a blob reachable (committing an upload and linking it, mounting) holds it too, so a blob is
 * never deleted between "it exists" and "a repository links it".
 */
export class BlobLocks extends ProcessLocks {}
