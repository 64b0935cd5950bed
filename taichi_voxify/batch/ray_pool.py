"""Ray Core tasks: one task per asset with its resources declared, retried by Ray when its
worker dies, cancelled when it runs past the per-asset timeout. Results come back as the
worker's small records; the files go straight from the workers to the output folder, which
every node must therefore reach at the same path (a shared file system)."""
import logging
import os
import time
from collections import deque

from ..errors import VoxifyError
from .local_pool import failed
from .worker import error_line

INSTALL_HINT = ('--ray needs Ray, which is not installed: pip install "taichi_voxify[ray]" '
                "(or pip install ray)")
_PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def import_ray():
    try:
        import ray
    except ImportError:
        raise VoxifyError(INSTALL_HINT) from None
    return ray


def start_local_ray(**init_options):
    """Start a Ray on this machine whose workers import this same taichi_voxify (a source
    checkout need not be installed)."""
    ray = import_ray()
    path = os.pathsep.join(p for p in (_PACKAGE_PARENT, os.environ.get("PYTHONPATH")) if p)
    init_options.setdefault("include_dashboard", False)
    init_options.setdefault("log_to_driver", False)
    init_options.setdefault("logging_level", logging.WARNING)
    # "local": a Ray of our own even when another runs here (plain ray.init() would join it)
    ray.init(address="local", runtime_env={"env_vars": {"PYTHONPATH": path}}, **init_options)
    return ray


def _error_line(ray, exc):
    cause = getattr(exc, "cause", None)  # what the task itself raised
    if cause is not None and not isinstance(cause, ray.exceptions.RayError):
        return error_line(cause)
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"


class RayPool:
    """address None: a Ray started here (or the one this program already runs); else the
    address of an existing cluster ("auto", "ray://host:10001")."""

    def __init__(self, address, threads, gpus=0, retries=2, timeout=None):
        self.ray = import_ray()
        self.threads, self.gpus, self.retries, self.timeout = threads, gpus, retries, timeout
        self.started_here = not self.ray.is_initialized()
        if self.started_here:
            try:
                if address is None:
                    start_local_ray()
                else:
                    self.ray.init(address=address, include_dashboard=False, log_to_driver=False,
                                  logging_level=logging.WARNING)
            except Exception as exc:  # noqa: BLE001 - Ray raises many kinds; one line each
                raise VoxifyError(f"cannot start or join Ray at {address or 'this machine'}: "
                                  f"{str(exc).splitlines()[0] if str(exc) else exc!r}") from None

    def describe(self):
        cpus = int(self.ray.cluster_resources().get("CPU", 0))
        return f"Ray, {cpus} CPU(s), {self.threads} per task"

    def _capacity(self):
        """Tasks that can run at once: only those are submitted, so a task's timeout counts
        from about when it starts, and the driver does not flood the scheduler."""
        resources = self.ray.cluster_resources()
        slots = int(resources.get("CPU", 1) // self.threads)
        if self.gpus:
            slots = min(slots, int(resources.get("GPU", 0) // self.gpus))
        return max(1, slots)

    def run(self, job, tasks):
        """Yield (task, record) as assets finish, in any order."""
        ray = self.ray
        remote = ray.remote(num_cpus=self.threads, num_gpus=self.gpus,
                            max_retries=self.retries)(job)
        queue, running = deque(tasks), {}
        while queue or running:
            capacity = self._capacity()
            while queue and len(running) < capacity:
                task = queue.popleft()
                running[remote.remote(task)] = (task, time.monotonic())
            ready, _ = ray.wait(list(running), num_returns=1,
                                timeout=None if self.timeout is None else 1.0)
            for ref in ready:
                task, _ = running.pop(ref)
                try:
                    record = ray.get(ref)
                except ray.exceptions.RayError as exc:  # e.g. its worker died past retries
                    record = failed(task, _error_line(ray, exc))
                yield task, record
            if self.timeout is not None:
                now = time.monotonic()
                for ref, (task, started) in list(running.items()):
                    if now - started > self.timeout:
                        ray.cancel(ref, force=True)
                        del running[ref]
                        yield task, failed(task, f"timed out after {self.timeout:g} s")

    def close(self):
        if self.started_here:
            self.ray.shutdown()
