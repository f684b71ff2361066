import type Database from 'better-sqlite3';
import type {
  PageRequest,
} from '../../metadata-store.ts';
import { MIGRATIONS } from './migrations.ts';

/** What the SQLite driver's role modules share: the handle type, migrations, and query helpers. */
export type Db = Database.Database;

export function migrate(db: Db): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current > MIGRATIONS.length) {
    throw new Error(`metadata database is at schema ${current}, newer than this Cistern (${MIGRATIONS.length})`);
  }
  for (let version = current; version < MIGRATIONS.length; version++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[version]!);
      db.pragma(`user_version = ${version + 1}`);
    })();
  }
}

export function ensureRepository(db: Db, name: string, at: number): number {
  const row = db
    .prepare('INSERT INTO repositories (name, created_at) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET name = name RETURNING id')
    .get(name, at) as { id: number };
  return row.id;
}

export function pageOf(db: Db, sql: string, args: unknown[], page: PageRequest): string[] {
  return db.prepare(sql).pluck().all(...args, page.last ?? '', page.limit) as string[];
}
