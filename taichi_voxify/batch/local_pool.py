"""Local worker processes: each has its own Python and Taichi runtime and takes one asset at a
time. A worker that dies mid-asset (killed, out of memory, crashed in native code) is replaced
and the asset tried again; one that runs past the per-asset timeout is killed."""
import multiprocessing
import os
import time
from collections import deque
from multiprocessing.connection import wait

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def _serve(conn, threads):
    # before numpy loads: BLAS threads beyond this worker's share would fight the others
    for name in THREAD_VARIABLES:
        os.environ[name] = str(threads)
    while True:
        try:
            item = conn.recv()
        except EOFError:
            return
        if item is None:
            return
        job, task = item
        conn.send(job(task))


class _Worker:
    def __init__(self, context, threads):
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_serve, args=(child, threads), daemon=True)
        self.process.start()
        child.close()
        self.task, self.started = None, None

    def assign(self, job, task):
        self.task, self.started = task, time.monotonic()
        self.conn.send((job, task))

    def outcome(self, timeout):
        """The record, "died", "timeout", or None while still working."""
        if self.conn.poll():
            try:
                return self.conn.recv()
            except (EOFError, OSError):
                return "died"
        if not self.process.is_alive():
            return "died"
        if timeout is not None and time.monotonic() - self.started > timeout:
            return "timeout"
        return None

    def stop(self, kill=False):
        if kill or not self.process.is_alive():
            self.process.kill()
        else:
            try:
                self.conn.send(None)
            except OSError:
                self.process.kill()
        self.process.join(timeout=10)
        self.conn.close()


def failed(task, error):
    return {"name": task["name"], "status": "failed", "error": error}


class LocalPool:
    """`jobs` worker processes with `threads` Taichi threads each."""

    def __init__(self, jobs, threads, retries=2, timeout=None):
        self.jobs, self.threads, self.retries, self.timeout = jobs, threads, retries, timeout

    def describe(self):
        return f"{self.jobs} local worker(s), {self.threads} thread(s) each"

    def run(self, job, tasks):
        """Yield (task, record) as assets finish, in any order."""
        context = multiprocessing.get_context("spawn")  # a fork would copy the driver's state
        queue, idle, busy, tries = deque(tasks), [], [], {}
        try:
            while queue or busy:
                while queue and len(busy) < self.jobs:
                    worker = idle.pop() if idle else _Worker(context, self.threads)
                    worker.assign(job, queue.popleft())
                    busy.append(worker)
                wait([w.conn for w in busy] + [w.process.sentinel for w in busy],
                     timeout=None if self.timeout is None else 1.0)
                for worker in list(busy):
                    outcome = worker.outcome(self.timeout)
                    if outcome is None:
                        continue
                    busy.remove(worker)
                    task = worker.task
                    name = task["name"]
                    tries[name] = tries.get(name, 0) + 1
                    if outcome == "died":
                        code = worker.process.exitcode
                        worker.stop(kill=True)
                        if tries[name] <= self.retries:
                            queue.appendleft(task)
                            continue
                        record = failed(task, f"worker died (exit code {code}) on each of "
                                              f"{tries[name]} tries")
                    elif outcome == "timeout":
                        worker.stop(kill=True)
                        record = failed(task, f"timed out after {self.timeout:g} s")
                    else:
                        idle.append(worker)
                        record = outcome
                    yield task, dict(record, attempts=tries[name])
        finally:
            for worker in idle + busy:
                worker.stop(kill=worker in busy)

    def close(self):
        pass
