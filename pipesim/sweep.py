"""What-if sweeps: a grid of scenario variants, each solved and simulated, resumable.

Problem: "what if we had 4 accelerators instead of 8, or half the link
bandwidth?" is a grid over scenario fields.  :func:`grid` makes the points
(the Cartesian product of ``PATH: [values]``, in order); :func:`run_sweep`
runs the points not yet done — in this process, on local worker processes, or
on a Dask distributed cluster — and appends each point's row to
``sweep.jsonl`` (and ``sweep.csv``) the moment it finishes.

Guarantees:
* **Resumable.** A point's ``key`` is its overrides as canonical JSON; points
  whose key is already in ``sweep.jsonl`` are skipped (failed ones too, unless
  ``retry_failed``), so an interrupted sweep picks up where it stopped and
  loses no finished point.  A torn last line (the process was killed while
  writing) is ignored and that point re-run.  The rows of an interrupted and
  resumed sweep equal those of an uninterrupted one (only timings differ).
* **Failures are data.** A point that raises is recorded with
  ``status: "error"`` and the message; the sweep goes on.
* Rows carry the summary of :meth:`pipesim.pipeline.Outcome.summary`; the
  CSV has fixed columns (:data:`CSV_FIELDS`) and is rewritten from the JSONL
  when a sweep starts, so the two never disagree about finished points.
* One sweep at a time per folder (``sweep.lock`` holds the writer's pid; a
  stale lock, whose process is gone, is taken over).
"""

from __future__ import annotations

import csv
import itertools
import json
import os
import time
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipesim.errors import InputError, require_extra
from pipesim.placement.formats import dumps
from pipesim.output import output_folder
from pipesim.placement.interrupt import children_ignore_ctrl_c

__all__ = ["CSV_FIELDS", "Point", "SweepRun", "grid", "read_rows", "run_point", "run_sweep", "validate_grid"]

#: Summary fields copied into each row (and the CSV's columns after the parameters).
SUMMARY_FIELDS = (
    "status", "error", "predicted_time_per_sample", "simulated_time_per_sample", "relative_difference", "settled",
    "predicted_throughput", "simulated_throughput", "latency", "bottleneck", "bottleneck_load", "devices_used",
    "bubble_fraction", "mean_utilisation", "cost_per_hour", "cost_per_million_samples", "runnable", "seconds",
    "cpu_seconds",
)
CSV_FIELDS = ("key",) + SUMMARY_FIELDS


@dataclass(frozen=True)
class Point:
    """One grid point: the scenario fields it overrides.

    Examples
    --------
    >>> point = Point((("solve.method", "dp"), ("simulate.microbatches", 40)))
    >>> point.key
    '{"simulate.microbatches": 40, "solve.method": "dp"}'
    """

    overrides: tuple[tuple[str, Any], ...]

    @property
    def key(self) -> str:
        """The point's identity in ``sweep.jsonl`` (sorted JSON of its overrides)."""
        return json.dumps(dict(self.overrides), sort_keys=True)

    @property
    def params(self) -> dict[str, Any]:
        """The overrides as a mapping."""
        return dict(self.overrides)


def grid(vary: Mapping[str, Sequence[Any]]) -> list[Point]:
    """The Cartesian product of ``{path: values}`` (first path varies slowest).

    Examples
    --------
    >>> [p.params for p in grid({"a": [1, 2], "b": ["x", "y"]})]
    [{'a': 1, 'b': 'x'}, {'a': 1, 'b': 'y'}, {'a': 2, 'b': 'x'}, {'a': 2, 'b': 'y'}]
    """
    paths = list(vary)
    return [Point(tuple(zip(paths, combo))) for combo in itertools.product(*(vary[p] for p in paths))]


def run_point(data: dict, source: str, overrides: Sequence[tuple[str, Any]]) -> dict:
    """Validate, build, solve and simulate one point; never raises (an error is a row with ``status: error``).

    Parameters
    ----------
    data : dict
        The scenario's mapping.
    source : str
        The scenario file (relative paths resolve against its folder).
    overrides : sequence of (str, value)
        The point.

    Returns
    -------
    dict
        ``key``, ``params``, the summary fields (:data:`SUMMARY_FIELDS`),
        ``status`` (``ok``, ``error`` or the solver's status), ``error``,
        ``seconds`` and ``cpu_seconds``.

    Examples
    --------
    >>> row = run_point({"model": {"generator": "transformer"}}, "s.yaml", [("hardware.preset", "a100x9")])
    >>> row["status"], row["error"][:40]
    ('error', 'ScenarioError: s.yaml: hardware.preset: ')
    """
    started, cpu_started = time.perf_counter(), time.process_time()
    point = Point(tuple((p, v) for p, v in overrides))
    row: dict[str, Any] = {"key": point.key, "params": point.params}
    try:
        from pipesim.pipeline import execute
        from pipesim.scenario import scenario_from_data

        outcome = execute(scenario_from_data(data, source, point.overrides))
        summary = outcome.summary()
        row.update({k: summary.get(k) for k in SUMMARY_FIELDS if k in summary})
        row["status"] = "ok" if outcome.ok else summary.get("status")
        row["error"] = outcome.problem or summary.get("warning")  # a split the schedule cannot hold says so
    except Exception as exc:  # a failing point is recorded, the sweep goes on
        row.update({k: None for k in SUMMARY_FIELDS})
        row["status"] = "error"
        row["error"] = f"{type(exc).__name__}: {exc}"
        row["traceback"] = traceback.format_exc(limit=6)
    row["seconds"] = time.perf_counter() - started
    row["cpu_seconds"] = time.process_time() - cpu_started  # below ``seconds`` when the machine is shared
    return row


def read_rows(path: Path) -> list[dict]:
    """The rows of a JSONL file, skipping a torn (unparseable) line; ``[]`` if there is no file.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> path = Path(tempfile.mkdtemp()) / "sweep.jsonl"
    >>> _ = path.write_text('{"key": "a", "status": "ok"}\\n{"key": "b", "sta')
    >>> read_rows(path)
    [{'key': 'a', 'status': 'ok'}]
    """
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except (json.JSONDecodeError, RecursionError):
            continue
        if isinstance(row, dict) and "key" in row:
            rows.append(row)
    return rows


def _csv_row(row: dict, params: Sequence[str]) -> dict:
    out = {p: json.dumps(row["params"].get(p)) if isinstance(row["params"].get(p), (list, dict)) else row["params"].get(p)
           for p in params}
    out.update({k: row.get(k) for k in CSV_FIELDS})
    return out


@dataclass
class SweepRun:
    """Where a sweep writes, and what it has (``rows``: finished points, in grid order).

    Attributes
    ----------
    folder : Path
    points : list of Point
        The whole grid.
    rows : list of dict
        Finished points (this run's and earlier runs'), in grid order.
    ran, skipped : int
        Points run now, and points already done before.
    """

    folder: Path
    points: list[Point]
    rows: list[dict]
    ran: int
    skipped: int

    @property
    def jsonl(self) -> Path:
        """``sweep.jsonl``: one row per finished point (the resumable record)."""
        return self.folder / "sweep.jsonl"

    @property
    def csv(self) -> Path:
        """``sweep.csv``: the same rows as a table."""
        return self.folder / "sweep.csv"


class _Writer:
    """Appends each finished row to the JSONL and the CSV, flushing at once."""

    def __init__(self, folder: Path, params: Sequence[str], done: Iterable[dict]) -> None:
        output_folder(folder)
        self.params = list(params)
        # rows are appended as points finish (the sweep resumes from them), so these files are
        # streamed, not written through pipesim.output's all-or-nothing rename
        try:
            self.jsonl = (folder / "sweep.jsonl").open("a", encoding="utf-8")
            self.csv_file = (folder / "sweep.csv").open("w", newline="", encoding="utf-8")
        except OSError as exc:
            raise InputError(Path(exc.filename or folder), None, f"cannot be written ({exc.strerror or exc})") from None
        self.csv = csv.DictWriter(self.csv_file, fieldnames=self.params + list(CSV_FIELDS), extrasaction="ignore")
        self.csv.writeheader()
        for row in done:
            self.csv.writerow(_csv_row(row, self.params))
        self.csv_file.flush()

    def write(self, row: dict) -> None:
        self.jsonl.write(dumps(row, sort_keys=True) + "\n")
        self.jsonl.flush()
        self.csv.writerow(_csv_row(row, self.params))
        self.csv_file.flush()

    def close(self) -> None:
        self.jsonl.close()
        self.csv_file.close()


def _repair_torn_line(path: Path) -> None:
    """Drop a partial last line so that appended rows start on a line of their own."""
    if path.is_file() and path.stat().st_size:
        text = path.read_text()
        if not text.endswith("\n"):
            path.write_text(text[: text.rfind("\n") + 1])


def _take_lock(folder: Path) -> Path:
    """``folder/sweep.lock`` holding our pid: two sweeps appending to one file would duplicate points."""
    output_folder(folder)
    lock = folder / "sweep.lock"
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                pid = int(lock.read_text().strip())
                if pid <= 0:
                    raise ValueError(pid)
                os.kill(pid, 0)  # raises if no such process: the lock is stale
            except (ValueError, ProcessLookupError, FileNotFoundError):
                lock.unlink(missing_ok=True)
                continue
            except PermissionError:
                pass  # the process exists (another user's)
            raise InputError(folder, None, f"another sweep (process {pid}) is writing here; wait for it or remove {lock}")
        with os.fdopen(fd, "w") as f:
            f.write(str(os.getpid()))
        return lock
    raise InputError(folder, None, f"cannot take {lock}")


def _local(data, source, todo: list[Point], workers: int):
    if workers <= 1:
        for point in todo:
            yield run_point(data, source, point.overrides)
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        # the workers start here: a terminal's Ctrl-C must stop this process, not print their tracebacks
        with children_ignore_ctrl_c():
            pending = {pool.submit(run_point, data, source, point.overrides) for point in todo}
        try:
            while pending:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    yield future.result()
        finally:
            for future in pending:
                future.cancel()


def _dask(data, source, todo: list[Point], address: Any):
    distributed = require_extra("distributed", "dask")
    Client, as_completed = distributed.Client, distributed.as_completed
    try:
        client = address if isinstance(address, Client) else Client(address, timeout="10s")
    except (OSError, TimeoutError) as exc:
        raise InputError(None, "--dask", f"cannot reach the Dask scheduler at {address}: {exc}") from None
    try:
        futures = [client.submit(run_point, data, source, point.overrides, pure=False) for point in todo]
        try:
            for future in as_completed(futures):
                yield future.result()
        finally:
            client.cancel(futures)
    finally:
        if client is not address:
            client.close()


def run_sweep(
    data: dict,
    source: str | Path,
    vary: Mapping[str, Sequence[Any]],
    folder: str | Path,
    *,
    workers: int = 1,
    dask: Any = None,
    retry_failed: bool = False,
    on_row: Callable[[dict, int, int], None] | None = None,
) -> SweepRun:
    """Run the points of ``vary`` not yet in ``folder/sweep.jsonl``; ``dask`` is a scheduler address or Client.

    ``on_row(row, done, total)`` is called after each row is written (progress;
    an exception from it, e.g. ``KeyboardInterrupt``, stops the sweep with
    every finished row saved).

    Parameters
    ----------
    data : dict
        The scenario's mapping.
    source : str or Path
        The scenario file.
    vary : mapping of str to sequence
        Field path -> values (:func:`grid`).
    folder : str or Path
        Where ``sweep.jsonl`` and ``sweep.csv`` go; a sweep already there
        resumes.
    workers : int
        Local processes.
    dask : str or Client, optional
        Run the points on a Dask cluster instead.
    retry_failed : bool
        Run again the points whose row is an error.
    on_row : callable, optional

    Returns
    -------
    SweepRun

    Raises
    ------
    InputError
        Another sweep holds the folder's lock.
    """
    folder = Path(folder)
    validate_grid(data, source, vary)
    lock = _take_lock(folder)
    try:
        return _run_points(data, source, vary, folder, workers, dask, retry_failed, on_row)
    finally:
        lock.unlink(missing_ok=True)


def validate_grid(data: dict, source: str | Path, vary: Mapping[str, Sequence[Any]]) -> None:
    """Check every value of every varied field before any point runs; one error listing all bad values.

    Each value is validated in a scenario where only its field changes (a
    bad value is reported once, not once per point it appears in).

    Raises
    ------
    ScenarioError
        Every bad value, as ``sweep.vary.PATH=VALUE: field: problem``.
    """
    from pipesim.scenario import ScenarioError, scenario_from_data

    problems: list[tuple[str, str]] = []
    for path, values in vary.items():
        for value in values:
            try:
                scenario_from_data(data, source, [(path, value)])
            except ScenarioError as exc:
                problems += [(f"sweep.vary.{path}={value}: {where}", problem) for where, problem in exc.problems]
            except InputError as exc:
                problems.append((f"sweep.vary.{path}={value}", exc.problem))
    if problems:
        raise ScenarioError(source, problems)


def _run_points(data, source, vary, folder: Path, workers, dask, retry_failed, on_row) -> SweepRun:
    points = grid(vary)
    jsonl = folder / "sweep.jsonl"
    _repair_torn_line(jsonl)
    keys = {p.key for p in points}
    done = {r["key"]: r for r in read_rows(jsonl) if r["key"] in keys and (r.get("status") == "ok" or not retry_failed)}
    todo = [p for p in points if p.key not in done]
    writer = _Writer(folder, list(vary), done.values())
    source = str(Path(source).resolve())  # workers may run elsewhere (Dask): no cwd-relative paths
    runner = _dask(data, source, todo, dask) if dask is not None else _local(data, source, todo, workers)
    ran = 0
    try:
        for row in runner:
            writer.write(row)
            done[row["key"]] = row
            ran += 1
            if on_row is not None:
                on_row(row, len(done), len(points))
    finally:
        runner.close()
        writer.close()
    rows = [done[p.key] for p in points if p.key in done]
    return SweepRun(folder, points, rows, ran, len(points) - len(todo))
