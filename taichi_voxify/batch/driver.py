"""The batch driver: find the assets, skip those already done, hand the rest to a worker pool
(local processes or Ray), write each result to the manifest as it arrives, then the shared
palette and the contact sheet. Only the driver writes the manifest; workers write their own
asset folders."""
import contextlib
import os
import sys
import time

from ..errors import OptionError, VoxifyError
from . import contact_sheet, shared_palette
from .inputs import collect_assets, file_sha256
from .local_pool import LocalPool, failed
from .manifest import Manifest
from .worker import convert_asset, palette_sample


class Progress:
    """One bar for the whole batch: assets done, with ok / failed / skipped counts and an ETA."""

    def __init__(self, enabled=True):
        self.enabled, self.bar = enabled, None
        self.counts = {"ok": 0, "failed": 0, "skipped": 0}

    def start(self, total, what):
        self.counts = dict.fromkeys(self.counts, 0)  # each pass counts its own assets
        if self.enabled:
            from tqdm import tqdm

            self.close()
            self.bar = tqdm(total=total, desc=what, unit="asset", file=sys.stderr,
                            dynamic_ncols=True)

    def done(self, record):
        status = record.get("status", "failed")
        self.counts[status] = self.counts.get(status, 0) + 1
        if self.bar is not None:
            self.bar.set_postfix(self.counts, refresh=False)
            self.bar.update(1)

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def default_threads(workers):
    """Taichi threads per local worker: the machine's cores shared out evenly."""
    return max(1, (os.cpu_count() or 1) // workers)


def make_pool(jobs=1, ray=None, threads=None, gpus=0, retries=2, timeout=None):
    """ray: None for local processes, "local" to start a Ray here, or a cluster address."""
    if ray is None:
        return LocalPool(jobs, threads or default_threads(jobs), retries, timeout)
    from .ray_pool import RayPool

    return RayPool(None if ray == "local" else ray, threads or 1, gpus, retries, timeout)


@contextlib.contextmanager
def _exclusive(out_dir):
    """One batch at a time per output folder: two drivers would interleave the manifest."""
    import fcntl

    with open(os.path.join(out_dir, ".batch.lock"), "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise VoxifyError(f"another voxify batch is writing to {out_dir}") from None
        yield


def _hash_inputs(assets):
    hashes, unreadable = {}, []
    for asset in assets:
        try:
            hashes[asset.name] = file_sha256(asset.path)
        except OSError as exc:
            unreadable.append(dict(failed({"name": asset.name}, f"cannot read {asset.path}: "
                                          f"{exc.strerror or exc}"), input=asset.path))
    return hashes, unreadable


def settings_of(options):
    """What the manifest records and a re-run compares: every setting that changes the
    outputs (not the thread count, nor --force, which only allows overwriting), and the
    package version."""
    from .. import __version__

    settings = options.as_dict()
    for name in ("threads", "force"):
        settings.pop(name, None)
    return dict(settings, version=__version__)


def _shared_palette(pool, tasks, options, out_dir, hashes, manifest, progress):
    """The batch's palette (hex list); assets whose pixel art cannot be made fail here."""
    palette, colors = options.palette, options.colors
    if not shared_palette.needs_samples(palette, colors):
        hex_colors = shared_palette.given(palette, colors)
        shared_palette.write(out_dir, hex_colors, {"palette": palette})
        return hex_colors
    settings = settings_of(options)
    source = {"settings": settings, "inputs": sorted(hashes[t["name"]] for t in tasks)}
    hex_colors = shared_palette.load_if_same(out_dir, source)
    if hex_colors is None:
        samples = []
        progress.start(len(tasks), "palette")
        for task, record in pool.run(palette_sample, tasks):
            if record["status"] == "ok":
                samples.append(record)
            else:
                manifest.add(dict(record, input=task["input"], sha256=hashes[task["name"]],
                                  settings=settings))
                progress.done(record)
                continue
            progress.done({"status": "ok"})
        progress.close()
        if not samples:
            return None
        hex_colors = shared_palette.as_hex(shared_palette.from_samples(
            samples, palette, colors, options.seed))
        shared_palette.write(out_dir, hex_colors, source)
    return hex_colors


def run_batch(inputs, out_dir, options, pool, shared=False, progress=None, job=convert_asset):
    """Convert every asset named by `inputs` into out_dir/NAME/; returns this run's records
    (one per asset: status ok, skipped or failed) and the shared palette (or None).

    options: the Options of every asset's conversion; pool: from make_pool; shared: one
    palette for the set; job: the function a worker runs on each asset's task.
    """
    from ..outputs import prepare_out_dir

    if options.pixel_art is not None:
        raise OptionError("--pixel-art belongs to one mesh: a batch makes each asset's own")
    out_dir = prepare_out_dir(out_dir)
    assets = collect_assets(inputs, out_dir)
    progress = progress or Progress(False)
    if options.threads is None and getattr(pool, "threads", None):
        options = options.replace(threads=pool.threads)
    settings = settings_of(options)
    with _exclusive(out_dir):
        manifest = Manifest(out_dir)
        hashes, unreadable = _hash_inputs(assets)
        for record in unreadable:
            manifest.add(dict(record, settings=settings))
        tasks = [{"name": a.name, "input": a.path, "out_dir": out_dir, "options": options}
                 for a in assets if a.name in hashes]
        hex_colors = None
        if shared and tasks:
            hex_colors = _shared_palette(pool, tasks, options, out_dir, hashes, manifest,
                                         progress)
            if hex_colors:
                options = options.replace(palette=",".join(hex_colors))
                settings = dict(settings_of(options), shared_palette=True)
            tasks = [dict(t, options=options) for t in tasks if t["name"] not in manifest.current]
        todo = []
        for task in tasks:
            old = manifest.done_before(task["name"], task["input"], hashes[task["name"]],
                                       settings)
            if old is not None:
                manifest.add(dict(old, status="skipped"))
            else:
                todo.append(task)
        progress.start(len(todo), "convert")
        for task, record in pool.run(job, todo):
            record = dict(record, input=task["input"], sha256=hashes[task["name"]],
                          settings=settings, finished=time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                     time.gmtime()))
            manifest.add(record)
            progress.done(record)
        progress.close()
        order = {a.name: i for i, a in enumerate(assets)}
        this_run = sorted(manifest.current.values(), key=lambda r: order.get(r["name"], 0))
        manifest.current = {r["name"]: r for r in this_run}
        manifest.finish()
        contact_sheet.write(out_dir, this_run, hex_colors)
    return this_run, hex_colors
