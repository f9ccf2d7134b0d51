#!/usr/bin/env python3
"""An Atmo Workers process worker in Python (standard library only).

The engine runs this file as a process and speaks the worker protocol with it: one JSON object
per line on stdin (engine -> worker) and stdout (worker -> engine). See docs/protocol.md.

Use it as a module:

    from atmo_worker import Worker, TaskError

    worker = Worker("example", "1.0.0", concurrency=4)

    @worker.action("ADD")
    def add(params, ctx):
        return {"sum": params["a"] + params["b"]}

    worker.run()

A handler gets the request's parameters and a context: ``ctx.request_id``, ``ctx.attempt``,
``ctx.deadline`` (ms since the epoch), ``ctx.cancelled`` (a threading.Event set by
``cancel-task``), ``ctx.progress(percent, message)``. It returns a JSON-serialisable result or
raises ``TaskError`` (code, message, category, retryable); any other exception is a
``processing`` failure. stdout belongs to the protocol: log with ``log()`` (stderr), which the
engine records with the worker id.

Run as a script (``python3 atmo_worker.py``), as a module (``python -m atmo_worker``) or, once
installed (``pip install ./workers/python``), as the ``atmo-worker`` command, it serves the
example manifest: ADD, WORD_COUNT, REVERSE, SLEEP, FAIL.
"""

import json
import os
import sys
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor

__version__ = "0.1.0"
__all__ = ["Worker", "Context", "TaskError", "log", "example_worker", "main", "PROTOCOL_VERSION"]

PROTOCOL_VERSION = 1
MAX_LINE_BYTES = 16 * 1024 * 1024


def log(*args):
    """Writes a line to stderr (the engine's log, tagged with this worker's id)."""
    print(*args, file=sys.stderr, flush=True)


class TaskError(Exception):
    """A failure the engine records as is. category: validation, processing, timeout, system,
    network or cancelled; retryable overrides the retry policy's choice for the category."""

    def __init__(self, code, message, category="processing", retryable=None, details=None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.category = category
        self.retryable = retryable
        self.details = details

    def to_wire(self):
        error = {"code": self.code, "message": self.message, "category": self.category}
        if self.retryable is not None:
            error["retryable"] = self.retryable
        if self.details is not None:
            error["details"] = self.details
        return error


class Context:
    """What a handler knows about the attempt it runs."""

    def __init__(self, worker, message):
        self.request_id = message["requestId"]
        self.task_id = message["taskId"]
        self.attempt = message.get("attempt", 1)
        self.deadline = message.get("deadline")
        self.cancelled = threading.Event()
        self._worker = worker

    def progress(self, percent, message=None):
        """Reports progress (0-100) on the request."""
        msg = {"type": "task-progress", "requestId": self.request_id, "progress": float(percent)}
        if message is not None:
            msg["message"] = message
        self._worker._send(msg)

    def check(self):
        """Raises a `cancelled` TaskError if the engine asked to stop."""
        if self.cancelled.is_set():
            raise TaskError("CANCELLED", "the attempt was cancelled or timed out", "cancelled", False)


class Worker:
    """Serves handlers over the worker protocol."""

    def __init__(self, manifest, version="", concurrency=1):
        self.manifest = manifest
        self.version = version
        self.concurrency = max(1, int(concurrency))
        self.handlers = {}
        self._out = sys.stdout
        self._out_lock = threading.Lock()
        self._running = {}
        self._running_lock = threading.Lock()

    def action(self, action_id):
        """Decorator registering the handler of an action."""

        def register(fn):
            self.handlers[action_id] = fn
            return fn

        return register

    def _send(self, msg):
        line = json.dumps(msg, separators=(",", ":")) + "\n"
        with self._out_lock:
            self._out.write(line)
            self._out.flush()

    def _execute(self, message, ctx):
        started = time.monotonic()
        reply = {"type": "task-complete", "requestId": ctx.request_id}
        try:
            handler = self.handlers.get(ctx.task_id)
            if handler is None:
                known = ", ".join(sorted(self.handlers))
                raise TaskError("UNKNOWN_TASK", f"this worker has no handler for `{ctx.task_id}` (it has: {known})",
                                "validation", False)
            result = handler(message.get("parameters") or {}, ctx)
            reply["success"] = True
            reply["result"] = result
        except TaskError as e:
            reply["success"] = False
            reply["error"] = e.to_wire()
        except Exception as e:  # a handler bug: recorded, the worker lives on
            log(f"handler {ctx.task_id} raised:\n{traceback.format_exc()}")
            reply["success"] = False
            reply["error"] = {"code": "HANDLER_ERROR", "message": f"{type(e).__name__}: {e}",
                              "category": "processing"}
        finally:
            with self._running_lock:
                self._running.pop(ctx.request_id, None)
        reply["executionTime"] = (time.monotonic() - started) * 1000.0
        try:
            self._send(reply)
        except (TypeError, ValueError) as e:  # the result is not JSON
            self._send({"type": "task-complete", "requestId": ctx.request_id, "success": False,
                        "error": {"code": "BAD_RESULT", "message": f"the result is not JSON: {e}",
                                  "category": "processing", "retryable": False}})

    def run(self):
        """Announces the worker, then serves until `shutdown` or the end of stdin."""
        self._send({
            "type": "worker-ready",
            "protocolVersion": PROTOCOL_VERSION,
            "manifest": {"name": self.manifest, "version": self.version},
            "actions": sorted(self.handlers),
            "maxConcurrentTasks": self.concurrency,
            "pid": os.getpid(),
        })
        pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="atmo-task")
        stdin = sys.stdin.buffer
        try:
            while True:
                raw = stdin.readline(MAX_LINE_BYTES + 1)
                if not raw:
                    break
                if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
                    log(f"ignoring a line longer than {MAX_LINE_BYTES} bytes")
                    while raw and not raw.endswith(b"\n"):
                        raw = stdin.readline(MAX_LINE_BYTES)
                    continue
                if not raw.strip():
                    continue
                try:
                    message = json.loads(raw)
                    kind = message["type"]
                except (ValueError, KeyError, TypeError) as e:
                    log(f"ignoring a malformed message ({e}): {raw[:120]!r}")
                    continue
                if kind == "execute-task":
                    ctx = Context(self, message)
                    with self._running_lock:
                        self._running[ctx.request_id] = ctx
                    pool.submit(self._execute, message, ctx)
                elif kind == "cancel-task":
                    with self._running_lock:
                        ctx = self._running.get(message.get("requestId"))
                    if ctx is not None:
                        ctx.cancelled.set()
                elif kind == "heartbeat":
                    self._send({"type": "heartbeat", "timestamp": int(time.time() * 1000)})
                elif kind == "shutdown":
                    break
                else:
                    log(f"ignoring an unknown message type {kind!r}")
        finally:
            # Finish what is running; the engine kills the process after its grace period.
            pool.shutdown(wait=True)


def example_worker():
    """The example manifest's handlers (the same actions as the Node template)."""
    worker = Worker("example", "1.0.0", concurrency=int(os.environ.get("ATMO_CONCURRENCY", "4")))

    @worker.action("ADD")
    def add(params, ctx):
        a, b = params.get("a"), params.get("b")
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (a, b)):
            raise TaskError("INVALID_PARAMETERS", "`a` and `b` must be numbers", "validation", False,
                            {"parameter": "a" if not isinstance(a, (int, float)) else "b"})
        return {"sum": a + b}

    @worker.action("WORD_COUNT")
    def word_count(params, ctx):
        text = params.get("text", "")
        counts = {}
        for word in text.lower().split():
            counts[word] = counts.get(word, 0) + 1
        return {"words": sum(counts.values()), "unique": len(counts), "counts": counts}

    @worker.action("REVERSE")
    def reverse(params, ctx):
        return {"text": params.get("text", "")[::-1]}

    @worker.action("SLEEP")
    def sleep(params, ctx):
        ms = int(params.get("ms", 100))
        ctx.progress(0, "sleeping")
        if ctx.cancelled.wait(ms / 1000.0):
            ctx.check()
        ctx.progress(100, "awake")
        return {"slept": ms}

    @worker.action("FAIL")
    def fail(params, ctx):
        raise TaskError(params.get("code", "REQUESTED_FAILURE"), params.get("message", "failed on request"),
                        params.get("category", "processing"), params.get("retryable"))

    return worker


def main():
    """Serves the example manifest on stdin/stdout (the ``atmo-worker`` command)."""
    example_worker().run()


if __name__ == "__main__":
    main()
