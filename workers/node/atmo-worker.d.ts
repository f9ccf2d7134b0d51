// Types of atmo-worker.mjs: process workers for Atmo Workers in Node.js.

/** The worker protocol version this module speaks (announced in `worker-ready`). */
export const PROTOCOL_VERSION: 1;

/** How the engine files a failure: decides the retry policy's default for it. */
export type ErrorCategory = 'validation' | 'processing' | 'timeout' | 'system' | 'network' | 'cancelled';

/** The error as it goes on the wire in `task-complete`. */
export interface WireError {
  code: string;
  message: string;
  category: ErrorCategory;
  retryable?: boolean;
  details?: unknown;
}

/** A failure the engine records as is; any other exception is a `processing` failure. */
export class TaskError extends Error {
  constructor(
    code: string,
    message: string,
    options?: { category?: ErrorCategory; retryable?: boolean; details?: unknown },
  );
  readonly code: string;
  readonly category: ErrorCategory;
  readonly retryable: boolean | undefined;
  readonly details: unknown;
  /** The `error` object of a `task-complete` message. */
  toWire(): WireError;
}

/** What a handler gets besides the parameters. */
export interface TaskContext {
  readonly requestId: string;
  readonly taskId: string;
  /** 1 for the first attempt. */
  readonly attempt: number;
  /** When the attempt times out, in ms since the epoch (if it has a timeout). */
  readonly deadline: number | undefined;
  /** Aborted by `cancel-task` (a cancelled or timed-out attempt). */
  readonly signal: AbortSignal;
  /** Reports progress (0 to 100), with an optional message. */
  progress(percent: number, message?: string): void;
}

/** A handler: returns (or resolves to) a JSON-serialisable result, or throws a `TaskError`. */
export type Handler<P = any, R = unknown> = (parameters: P, ctx: TaskContext) => R | Promise<R>;

/** A worker being set up: register actions, then `run()`. */
export interface Worker {
  /** Registers the handler of an action (a task id of the manifest). */
  action<P = any, R = unknown>(actionId: string, handler: Handler<P, R>): Worker;
  /** Announces `worker-ready` and serves the protocol on stdin/stdout until `shutdown`. */
  run(): void;
}

/** A worker for the manifest `name` (and `version`), running up to `concurrency` tasks at once. */
export function createWorker(options: { name: string; version?: string; concurrency?: number }): Worker;

/** The example manifest's worker: ADD, WORD_COUNT, REVERSE, SLEEP, FAIL. */
export function exampleWorker(): Worker;
