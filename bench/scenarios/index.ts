// Registered scenario groups, in run order. To add one: create
// bench/scenarios/<name>.ts exporting `defineScenario({...})` as default and
// list it here.
import type { Scenario } from '../lib/framework.ts';
import registryCore from './registry-core.ts';
import pullThrough from './pull-through.ts';
import lifecycleGc from './lifecycle-gc.ts';

export const scenarios: Scenario[] = [registryCore, pullThrough, lifecycleGc];
