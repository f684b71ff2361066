import type { Command } from 'commander';
import { loadConfigFile } from '../config/load.ts';
import { CredentialStore } from '../secrets/credentials.ts';
import { openStores } from '../stores.ts';

export interface ApplyCommandIo {
  /** Where the plan goes; stdout by default. */
  write?: (text: string) => void;
  /** Where SOPS_AGE_KEY and SOPS_AGE_KEY_FILE are read; process.env by default. */
  env?: NodeJS.ProcessEnv;
}

/**
 * `cistern apply FILE [--dry-run]`: converges the store to a file in the `registries` format (the community ECR
 * pull-through module's seed YAML), plain or SOPS-encrypted with age. Each entry becomes a cache rule, an
 * `ecr-pullthroughcache/<prefix>` secret when it has credentials, and a creation template keeping the 3
 * newest images; what apply created earlier and the file no longer lists is deleted.
 */
export function addApplyCommand(program: Command, io: ApplyCommandIo = {}): void {
  const write = io.write ?? ((text: string) => void process.stdout.write(text));
  const say = (line: string) => write(`${line}\n`);
  program
    .command('apply <file>')
    .description('converge cache rules, their credentials and keep-3 templates to FILE (the registries format; plain or SOPS-encrypted with age)')
    .option('-c, --config <file>', 'configuration file (YAML)', 'cistern.yaml')
    .option('--dry-run', 'print the plan and change nothing')
    .action(async (file: string, options: { config: string; dryRun?: boolean }) => {
      // Loaded here, not at startup: `cistern serve` need not carry the SOPS and age code.
      const [{ executePlan, readCurrentState, ApplyConflictError }, { loadApplyFile }, { changesOf, conflictsOf, formatPlan, planApply, summarizePlan }] =
        await Promise.all([import('../apply/execute.ts'), import('../apply/file.ts'), import('../apply/plan.ts')]);
      const config = await loadConfigFile(options.config);
      // Read and decrypt the file before touching the store: a bad file changes nothing.
      const desired = await loadApplyFile(file, { env: io.env ?? process.env });
      const stores = await openStores(config);
      try {
        const credentials = new CredentialStore(stores.metadata.secrets, stores.box);
        const plan = planApply(desired, await readCurrentState({ metadata: stores.metadata, credentials }, config));
        for (const line of formatPlan(plan)) say(line);
        const conflicts = conflictsOf(plan);
        if (conflicts.length > 0) throw new ApplyConflictError(conflicts);
        const s = summarizePlan(plan);
        const counts = `${s.create} to create, ${s.update} to update, ${s.delete} to delete, ${s.unchanged} unchanged`;
        if (options.dryRun) {
          say(`dry run: ${counts}; nothing was changed`);
          return;
        }
        if (changesOf(plan).length === 0) {
          say('nothing to change');
          return;
        }
        await executePlan(plan, { metadata: stores.metadata, credentials });
        say(`applied: ${s.create} created, ${s.update} updated, ${s.delete} deleted, ${s.unchanged} unchanged`);
      } finally {
        await stores.metadata.close();
      }
    });
}
