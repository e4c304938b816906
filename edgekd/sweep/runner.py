"""Dask: the cluster a sweep runs on, and the loop that submits points and collects their results.

Default: a `distributed.LocalCluster` with one single-threaded worker process per core (`--workers N`).
With `--scheduler tcp://HOST:8786` the same tasks go to an existing cluster (`dask scheduler` +
`dask worker`); every worker needs the same edgekd install, and either sees the sweep folder or gets the
shared teacher as bytes (edgekd.sweep.base). Results always come back to the client, which caches them
and writes sweep.json.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = ["default_workers", "open_client", "run_tasks"]

log = logging.getLogger(__name__)


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


@contextmanager
def open_client(scheduler: str | None, workers: int | None) -> Iterator[tuple[object, dict]]:
    """A distributed.Client and a description of its cluster; the LocalCluster is closed on exit."""
    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")  # read by the worker processes at start
    import dask
    from distributed import Client, LocalCluster

    if not log.isEnabledFor(logging.DEBUG):  # the scheduler's chatter is not the user's progress
        logging.getLogger("distributed").setLevel(logging.WARNING)

    if scheduler is not None:
        client = Client(scheduler, timeout="30s")
        try:
            info = client.scheduler_info()
            n = len(info.get("workers", {}))
            yield client, {"kind": "scheduler", "address": scheduler, "workers": n}
        finally:
            client.close()
        return
    n = workers or default_workers()
    # builds are long tasks: no work stealing mid-build; the dashboard on a free port (never a collision)
    with dask.config.set({"distributed.scheduler.work-stealing": False, "distributed.worker.daemon": False}):
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0",
                               memory_limit=0)
        try:
            client = Client(cluster)
            try:
                yield client, {"kind": "LocalCluster", "address": cluster.scheduler_address, "workers": n}
            finally:
                client.close()
        finally:
            cluster.close()


def _running(client, pending_keys: set[str]) -> int:
    try:
        processing = client.processing()
        threads = client.nthreads()
    except Exception:  # noqa: BLE001 - a progress figure must never stop the sweep
        return 0
    return sum(min(len([k for k in keys if k in pending_keys]), threads.get(w, 1)) for w, keys in processing.items())


def run_tasks(client, submissions: list[tuple[dict, object]], on_result: Callable[[dict, dict], None],
              on_lost: Callable[[dict, BaseException], dict], poll_s: float = 0.5) -> None:
    """Wait for (point, future) pairs; call on_result(point, result) as each finishes, with a progress bar of
    points done, failed and running (a log line per point when stderr is not a terminal)."""
    from edgekd.progress import progress_bar

    pending = {fut.key: (point, fut) for point, fut in submissions}
    done = failed = 0
    total = len(submissions)
    with progress_bar() as bar:
        task = bar.add_task("sweep", total=total)
        while pending:
            finished = [k for k, (_, f) in pending.items() if f.done()]
            for k in finished:
                point, fut = pending.pop(k)
                try:
                    result = fut.result()
                except Exception as err:  # noqa: BLE001 - lost worker etc.: recorded, never cached
                    result = on_lost(point, err)
                on_result(point, result)
                ok = result.get("status") == "ok"
                done += ok
                failed += not ok
                bar.advance(task)
                log.info("point %d %s: %s (%s, %.0f s)", point["index"], point["label"],
                         "ok" if ok else f"FAILED at {result.get('failed_step')}: {result.get('error')}",
                         result.get("worker"), result.get("wall_s") or 0.0)
            running = _running(client, set(pending))
            bar.update(task, description=f"sweep: {done} done, {failed} failed, {running} running")
            if pending and not finished:
                time.sleep(poll_s)
