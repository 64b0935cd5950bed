"""`voxify batch INPUT... --out DIR` (also examples/batch.py): every conversion option of
`voxify` applies to every asset. Exit 0 when every asset is ok or skipped, 1 when any failed
(the summary names them), 2 for bad arguments."""
import os
import sys
import time

from ..errors import OptionError
from . import CommandParser, run_command


def build_parser():
    from ..options import Options

    p = CommandParser(prog="voxify batch", description="Convert many meshes with the same settings: "
                "one folder per asset in --out, a manifest to resume from, a contact sheet.")
    p.add_argument("inputs", nargs="*", metavar="INPUT",
                   help="mesh files, folders (searched recursively for every mesh format) or "
                        "globs ('assets/**/*.glb')")
    Options.add_arguments(p)
    p.add_argument("--out", required=True, metavar="DIR",
                   help="output folder: DIR/NAME/ per asset, DIR/manifest.jsonl, DIR/index.html "
                        "(with --ray on a cluster: a folder every node reaches at this path)")
    p.add_argument("--jobs", type=int, default=1,
                   help="local worker processes (default 1); the cores are shared among them")
    p.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
                   help="run on Ray instead: alone, a Ray started on this machine; or a "
                        "cluster's address (auto, ray://host:10001)")
    p.add_argument("--shared-palette", action="store_true",
                   help="one palette for every asset, from all their pixel art (or --palette's "
                        "colours); written once as DIR/palette.json and DIR/palette.png")
    p.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                   help="fail an asset that takes longer than this")
    p.add_argument("--retries", type=int, default=2,
                   help="tries again for an asset whose worker died (default 2)")
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    return p


def _looks_like_address(text):
    return text in ("local", "auto") or ":" in text


def parse(argv):
    from ..cli import _join_negative_views
    from ..options import Options

    args = build_parser().parse_args(_join_negative_views(argv))
    if args.ray is not None and not _looks_like_address(args.ray):
        args.inputs.insert(0, args.ray)  # `--ray models/`: the folder is an input, not an address
        args.ray = "local"
    if not args.inputs:
        raise OptionError("give at least one INPUT: a mesh file, a folder or a glob")
    if args.jobs < 1:
        raise OptionError(f"--jobs must be at least 1, got {args.jobs}")
    if args.retries < 0:
        raise OptionError(f"--retries must be 0 or more, got {args.retries}")
    if args.timeout is not None and not args.timeout > 0:
        raise OptionError(f"--timeout must be a positive number of seconds, got {args.timeout}")
    return args, Options.from_args(args)


def summary(records, seconds, out_dir):
    counts = {s: sum(r["status"] == s for r in records) for s in ("ok", "skipped", "failed")}
    lines = [f"batch: {len(records)} assets in {seconds:.1f} s: "
             + ", ".join(f"{n} {s}" for s, n in counts.items()) + f"  ({out_dir}/index.html)"]
    lines += [f"failed: {r['name']} ({r.get('input')}): {r.get('error')}"
              for r in records if r["status"] == "failed"]
    return "\n".join(lines)


def run(argv):
    from ..batch.driver import Progress, make_pool, run_batch

    args, options = parse(argv)
    start = time.perf_counter()
    pool = make_pool(args.jobs, args.ray, options.threads,
                     gpus=1 if options.arch == "cuda" else 0, retries=args.retries,
                     timeout=args.timeout)
    try:
        records, _ = run_batch(args.inputs, args.out, options, pool, args.shared_palette,
                               Progress(not args.quiet))
    finally:
        pool.close()
    failed = [r for r in records if r["status"] == "failed"]
    text = summary(records, time.perf_counter() - start, os.path.abspath(args.out))
    if not args.quiet:
        print(text)
    elif failed:
        print("\n".join(text.splitlines()[1:]), file=sys.stderr)
    return 1 if failed else 0


def main(argv=None):
    return run_command(run, argv)
