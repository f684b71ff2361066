#!/usr/bin/env node
import { Command } from 'commander';
import { startApp } from './app.ts';
import { loadConfigFile, redactedConfig } from './config/load.ts';
import { addIdentityCommands } from './cli/identity-commands.ts';
import { addMaintenanceCommands } from './cli/maintenance-commands.ts';
import { addApplyCommand } from './cli/apply-command.ts';

const program = new Command('cistern').description('A container registry and pull-through cache');

program
  .command('serve', { isDefault: true })
  .description('serve the registry')
  .option('-c, --config <file>', 'configuration file (YAML)', 'cistern.yaml')
  .action(async (options: { config: string }) => {
    const config = await loadConfigFile(options.config);
    const app = await startApp(config);
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      app.log.info({ signal }, 'shutting down; letting in-flight requests finish');
      app.close().then(
        () => process.exit(0),
        (err: unknown) => {
          app.log.error({ err }, 'shutdown failed');
          process.exit(1);
        },
      );
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
  });

program
  .command('config-check')
  .description('validate a configuration file and print it with defaults filled in (secrets hidden)')
  .option('-c, --config <file>', 'configuration file (YAML)', 'cistern.yaml')
  .action(async (options: { config: string }) => {
    console.log(JSON.stringify(redactedConfig(await loadConfigFile(options.config)), null, 2));
  });

addIdentityCommands(program);
addMaintenanceCommands(program);
addApplyCommand(program);

program.parseAsync().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
