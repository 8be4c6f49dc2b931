"""Resumable stages: each stage's result is written atomically, so a rerun skips it.

A study is a list of named stages (train a method, train reference models,
audit, export). `StageRunner.run(name, fn)` calls `fn()` only when no result
file exists for `name`; the JSON result is written to a temporary file and
renamed, so a process killed mid-stage (even with SIGKILL) leaves either the
complete result or nothing, and the next run redoes exactly that stage.
"""

import json
import os
import time
from typing import Callable, Mapping, Optional

__all__ = ["StageRunner", "atomic_write_json"]


def atomic_write_json(path: str, content) -> None:
    """Writes JSON to `path` through a temporary file and `os.replace` (atomic on POSIX)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(content, f, indent=2, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _format_seconds(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


class StageRunner:
    """Runs named stages once each, persisting their JSON results in `directory/stages/`.

    Args:
      directory: the study's output folder.
      total_stages: number of stages the study will run, for the ETA line.
      log: where progress lines go (one line per stage).
    """

    def __init__(self, directory: str, total_stages: Optional[int] = None,
                 log: Callable[[str], None] = print):
        self._stage_dir = os.path.join(directory, "stages")
        os.makedirs(self._stage_dir, exist_ok=True)
        self._total = total_stages
        self._log = log
        self._start = time.time()
        self._done = 0
        self._computed_seconds = []

    def path(self, name: str) -> str:
        return os.path.join(self._stage_dir, f"{name}.json")

    def is_done(self, name: str) -> bool:
        return os.path.exists(self.path(name))

    def run(self, name: str, fn: Callable[[], Mapping]) -> dict:
        """Returns the stored result of stage `name`, computing and storing it if absent."""
        self._done += 1
        progress = f"[{self._done}/{self._total}]" if self._total else f"[{self._done}]"
        if self.is_done(name):
            with open(self.path(name)) as f:
                record = json.load(f)
            self._log(f"{progress} {name}: done earlier ({_format_seconds(record['seconds'])}), "
                      "reusing its result")
            return record["result"]
        self._log(f"{progress} {name}: running ...")
        start = time.time()
        result = dict(fn())
        seconds = time.time() - start
        atomic_write_json(self.path(name), {"result": result, "seconds": seconds})
        self._computed_seconds.append(seconds)
        line = (f"{progress} {name}: finished in {_format_seconds(seconds)}; elapsed "
                f"{_format_seconds(time.time() - self._start)}")
        if self._total:
            remaining = self._total - self._done
            mean = sum(self._computed_seconds) / len(self._computed_seconds)
            line += f"; ETA {_format_seconds(mean * remaining)} for {remaining} more stage(s)"
        self._log(line)
        return result

    def seconds(self, name: str) -> float:
        """Wall time the stage took when it was computed."""
        with open(self.path(name)) as f:
            return float(json.load(f)["seconds"])
