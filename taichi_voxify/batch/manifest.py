"""DIR/manifest.jsonl: one JSON line per asset, and what a re-run may skip.

Only the driver writes it: each finished asset is appended as one line (flushed to disk), so
a run killed half way still leaves valid lines to resume from; at the end the file is rewritten
whole with one line per asset (this run's first, then older assets this run did not touch).
"""
import json
import os

from ..errors import VoxifyError
from ..export.atomic import write_text

MANIFEST_NAME = "manifest.jsonl"
DONE = ("ok", "skipped")  # outputs on disk that match the line's input and settings


def _normal(value):
    """The value as it reads back from JSON (tuples become lists), for comparisons."""
    return json.loads(json.dumps(value))


def read_records(path):
    """{asset name: its last line} from a manifest; lines that do not parse are ignored."""
    records = {}
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return records
    except OSError as exc:
        raise VoxifyError(f"cannot read {path}: {exc.strerror or exc}") from None
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a line cut short when an earlier driver was killed mid-write
        if isinstance(record, dict) and isinstance(record.get("name"), str):
            records[record["name"]] = record
    return records


class Manifest:
    def __init__(self, out_dir):
        self.out_dir = out_dir
        self.path = os.path.join(out_dir, MANIFEST_NAME)
        self.previous = read_records(self.path)
        self.current = {}

    def done_before(self, name, path, sha256, settings):
        """The earlier line that makes converting this asset again unnecessary, or None."""
        old = self.previous.get(name)
        if (old is None or old.get("status") not in DONE or old.get("input") != path
                or old.get("sha256") != sha256 or old.get("settings") != _normal(settings)):
            return None
        files = old.get("files") or []
        if not files or not all(os.path.exists(os.path.join(self.out_dir, f)) for f in files):
            return None
        return old

    def add(self, record):
        """Append one finished asset as one line, on disk before the next one is written."""
        record = _normal(record)
        line = (json.dumps(record, sort_keys=True) + "\n").encode("utf-8")
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)
        self.current[record["name"]] = record

    def finish(self):
        """Rewrite the manifest whole: one line per asset."""
        ordered = list(self.current.values()) + [r for name, r in self.previous.items()
                                                 if name not in self.current]
        write_text(self.path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in ordered))
        return ordered
