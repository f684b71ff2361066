import type { z } from 'zod';
import { registryEntry } from '../config/schema.ts';

/** An apply file entry is exactly an entry of cistern.yaml's `registries` section. */
export const applyEntry = registryEntry;
export { isRulePrefix, PREFIX_MESSAGE } from '../config/schema.ts';

export type ApplyEntryInput = z.input<typeof applyEntry>;
export type ApplyEntry = z.output<typeof applyEntry>;
