import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { IdentityService } from '../auth/identities.ts';
import { parsePolicyDocument } from '../auth/permissions.ts';
import { loadConfigFile } from '../config/load.ts';
import { openStores } from '../stores.ts';

/** Full access to everything Cistern serves. */
export const ADMIN_POLICY = { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: ['ecr:*', 'secretsmanager:*'], Resource: '*' }] };

async function withIdentities<T>(configPath: string, work: (identities: IdentityService) => Promise<T>): Promise<T> {
  const stores = await openStores(await loadConfigFile(configPath));
  try {
    return await work(new IdentityService(stores.metadata.identities, stores.box));
  } finally {
    await stores.metadata.close();
  }
}

/** `cistern users ...` and `cistern keys ...`: identities are managed offline, against the store. */
export function addIdentityCommands(program: Command): void {
  const users = program.command('users').description('manage users and their permissions');
  users
    .command('create <name>')
    .description('create a user (or replace its policy) with IAM-style policy documents')
    .option('-c, --config <file>', 'configuration file (YAML)', 'cistern.yaml')
    .option('-p, --policy <file...>', 'policy document(s), JSON')
    .option('--admin', 'allow everything (ecr:* and secretsmanager:*)')
    .action(async (name: string, options: { config: string; policy?: string[]; admin?: boolean }) => {
      const documents: unknown[] = options.admin ? [ADMIN_POLICY] : [];
      for (const file of options.policy ?? []) documents.push(JSON.parse(await readFile(file, 'utf8')));
      if (documents.length === 0) throw new Error('give --policy FILE or --admin');
      documents.forEach((document) => parsePolicyDocument(document));
      await withIdentities(options.config, (identities) => identities.createUser(name, documents));
      console.log(`user ${name} saved`);
    });

  const keys = program.command('keys').description('manage access keys');
  keys
    .command('create <user>')
    .description('create an access key; the secret is printed once and cannot be shown again')
    .option('-c, --config <file>', 'configuration file (YAML)', 'cistern.yaml')
    .action(async (user: string, options: { config: string }) => {
      const key = await withIdentities(options.config, (identities) => identities.createKey(user));
      console.log(JSON.stringify(key, null, 2));
    });
}
