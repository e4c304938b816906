"""Point results cached by content hash: `<out>/results/<key>.json`, written by the client as results arrive.

The key (edgekd.sweep.points.point_key) covers the resolved config, the shared teacher's files, the thread
count, the last step and the edgekd version, so a cached result is the result the build would give again:
a killed sweep resumes with the points not yet done. A point that failed inside a build step is cached too
(builds are deterministic: it would fail again); `--retry-failed` runs those again. A point lost to the
cluster (a worker died) is never cached.
"""

from __future__ import annotations

import logging
from pathlib import Path

from edgekd.io import read_json, write_json

__all__ = ["ResultCache"]

log = logging.getLogger(__name__)


class ResultCache:
    def __init__(self, out: Path) -> None:
        self.dir = Path(out) / "results"

    def path(self, key: str) -> Path:
        return self.dir / f"{key}.json"

    def get(self, key: str, retry_failed: bool = False) -> dict | None:
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            result = read_json(path)
        except (OSError, ValueError) as err:
            log.warning("%s is unreadable (%s); the point runs again", path, err)
            return None
        if not isinstance(result, dict) or result.get("key") != key or result.get("status") not in ("ok", "failed"):
            return None
        if result["status"] == "failed" and (retry_failed or result.get("failed_step") is None):
            return None
        return result

    def put(self, result: dict) -> None:
        if result.get("status") == "failed" and result.get("failed_step") is None:
            return  # not a build failure (lost worker, missing teacher copy): try again next time
        write_json(self.path(result["key"]), result)
