#!/usr/bin/env node
// The benchmark's manifest (`add`, `noop`) served from Node, for `atmo bench process`.
import { createWorker } from './atmo-worker.mjs';

createWorker({ name: 'bench', concurrency: Number(process.env.ATMO_CONCURRENCY ?? 256) })
  .action('add', (p) => p.a + p.b)
  .action('noop', () => null)
  .run();
