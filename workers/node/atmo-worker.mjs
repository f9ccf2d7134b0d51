#!/usr/bin/env node
// An Atmo Workers process worker in Node.js (no dependencies).
//
// The engine runs this file as a process and speaks the worker protocol with it: one JSON
// object per line on stdin (engine -> worker) and stdout (worker -> engine). See
// docs/protocol.md.
//
// Use it as a module:
//
//   import { createWorker, TaskError } from './atmo-worker.mjs';
//   const worker = createWorker({ name: 'example', version: '1.0.0', concurrency: 8 });
//   worker.action('ADD', async (params, ctx) => ({ sum: params.a + params.b }));
//   worker.run();
//
// A handler gets the parameters and a context: ctx.requestId, ctx.attempt, ctx.deadline (ms
// since the epoch), ctx.signal (an AbortSignal aborted by `cancel-task`), ctx.progress(percent,
// message). It returns (or resolves to) a JSON-serialisable result, or throws a TaskError (code,
// message, category, retryable); any other exception is a `processing` failure. stdout belongs
// to the protocol: log with console.error (stderr), which the engine records with the worker id.
//
// Run as a script, it serves the example manifest: ADD, WORD_COUNT, REVERSE, SLEEP, FAIL.

import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';

export const PROTOCOL_VERSION = 1;
const MAX_LINE_BYTES = 16 * 1024 * 1024;

export class TaskError extends Error {
  constructor(code, message, { category = 'processing', retryable, details } = {}) {
    super(message);
    this.code = code;
    this.category = category;
    this.retryable = retryable;
    this.details = details;
  }

  toWire() {
    const error = { code: this.code, message: this.message, category: this.category };
    if (this.retryable !== undefined) error.retryable = this.retryable;
    if (this.details !== undefined) error.details = this.details;
    return error;
  }
}

export function createWorker({ name, version = '', concurrency = 1 }) {
  const handlers = new Map();
  const running = new Map();
  // Lines are collected and written once per turn of the event loop.
  let pending = [];
  let scheduled = false;

  function send(msg) {
    pending.push(JSON.stringify(msg));
    if (!scheduled) {
      scheduled = true;
      setImmediate(() => {
        scheduled = false;
        const out = pending.join('\n') + '\n';
        pending = [];
        process.stdout.write(out);
      });
    }
  }

  async function execute(msg) {
    const started = performance.now();
    const controller = new AbortController();
    running.set(msg.requestId, controller);
    const ctx = {
      requestId: msg.requestId,
      taskId: msg.taskId,
      attempt: msg.attempt ?? 1,
      deadline: msg.deadline,
      signal: controller.signal,
      progress(percent, message) {
        const p = { type: 'task-progress', requestId: msg.requestId, progress: Number(percent) };
        if (message !== undefined) p.message = message;
        send(p);
      },
    };
    const reply = { type: 'task-complete', requestId: msg.requestId };
    try {
      const handler = handlers.get(msg.taskId);
      if (!handler) {
        const known = [...handlers.keys()].sort().join(', ');
        throw new TaskError('UNKNOWN_TASK', `this worker has no handler for \`${msg.taskId}\` (it has: ${known})`, {
          category: 'validation',
          retryable: false,
        });
      }
      const result = await handler(msg.parameters ?? {}, ctx);
      reply.success = true;
      reply.result = result === undefined ? null : result;
    } catch (e) {
      reply.success = false;
      if (e instanceof TaskError) {
        reply.error = e.toWire();
      } else {
        console.error(`handler ${msg.taskId} threw:`, e);
        reply.error = { code: 'HANDLER_ERROR', message: String(e?.message ?? e), category: 'processing' };
      }
    } finally {
      running.delete(msg.requestId);
    }
    reply.executionTime = performance.now() - started;
    try {
      send(reply);
    } catch (e) {
      send({
        type: 'task-complete',
        requestId: msg.requestId,
        success: false,
        error: { code: 'BAD_RESULT', message: `the result is not JSON: ${e.message}`, category: 'processing', retryable: false },
      });
    }
  }

  return {
    action(actionId, fn) {
      handlers.set(actionId, fn);
      return this;
    },

    run() {
      send({
        type: 'worker-ready',
        protocolVersion: PROTOCOL_VERSION,
        manifest: { name, version },
        actions: [...handlers.keys()].sort(),
        maxConcurrentTasks: concurrency,
        pid: process.pid,
      });
      const rl = createInterface({ input: process.stdin, crlfDelay: Infinity });
      rl.on('line', (line) => {
        if (line.length > MAX_LINE_BYTES) {
          console.error(`ignoring a line longer than ${MAX_LINE_BYTES} bytes`);
          return;
        }
        if (!line.trim()) return;
        let msg;
        try {
          msg = JSON.parse(line);
        } catch (e) {
          console.error(`ignoring a malformed message (${e.message}): ${line.slice(0, 120)}`);
          return;
        }
        switch (msg?.type) {
          case 'execute-task':
            execute(msg);
            break;
          case 'cancel-task':
            running.get(msg.requestId)?.abort(msg.reason ?? 'cancelled');
            break;
          case 'heartbeat':
            send({ type: 'heartbeat', timestamp: Date.now() });
            break;
          case 'shutdown':
            rl.close();
            break;
          default:
            console.error(`ignoring an unknown message type ${JSON.stringify(msg?.type)}`);
        }
      });
      // After `shutdown` or the end of stdin, running handlers finish, their replies are
      // flushed, and the process exits once nothing is left to do.
      rl.on('close', () => {
        const wait = () => (running.size === 0 && pending.length === 0 ? process.exit(0) : setTimeout(wait, 5));
        wait();
      });
    },
  };
}

export function exampleWorker() {
  const worker = createWorker({ name: 'example', version: '1.0.0', concurrency: Number(process.env.ATMO_CONCURRENCY ?? 4) });
  worker.action('ADD', (p) => {
    for (const k of ['a', 'b']) {
      if (typeof p[k] !== 'number') {
        throw new TaskError('INVALID_PARAMETERS', '`a` and `b` must be numbers', {
          category: 'validation',
          retryable: false,
          details: { parameter: k },
        });
      }
    }
    return { sum: p.a + p.b };
  });
  worker.action('WORD_COUNT', (p) => {
    const counts = {};
    for (const w of String(p.text ?? '').toLowerCase().split(/\s+/).filter(Boolean)) counts[w] = (counts[w] ?? 0) + 1;
    return { words: Object.values(counts).reduce((a, b) => a + b, 0), unique: Object.keys(counts).length, counts };
  });
  worker.action('REVERSE', (p) => ({ text: [...String(p.text ?? '')].reverse().join('') }));
  worker.action('SLEEP', (p, ctx) => {
    const ms = Number(p.ms ?? 100);
    ctx.progress(0, 'sleeping');
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        ctx.progress(100, 'awake');
        resolve({ slept: ms });
      }, ms);
      ctx.signal.addEventListener('abort', () => {
        clearTimeout(timer);
        reject(new TaskError('CANCELLED', 'the attempt was cancelled or timed out', { category: 'cancelled', retryable: false }));
      });
    });
  });
  worker.action('FAIL', (p) => {
    throw new TaskError(p.code ?? 'REQUESTED_FAILURE', p.message ?? 'failed on request', {
      category: p.category ?? 'processing',
      retryable: p.retryable,
    });
  });
  return worker;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  exampleWorker().run();
}
