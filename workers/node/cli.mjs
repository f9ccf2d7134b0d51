#!/usr/bin/env node
// `atmo-worker`: serves the example manifest (ADD, WORD_COUNT, REVERSE, SLEEP, FAIL) over the
// worker protocol on stdin/stdout, as `node atmo-worker.mjs` does.
import { exampleWorker } from './atmo-worker.mjs';

exampleWorker().run();
