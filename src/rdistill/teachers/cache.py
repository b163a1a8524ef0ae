"""A content-addressed response cache in SQLite: never pay twice for the same teacher call.

Keys come from `Request.cache_key` (provider, model, messages, sampling parameters, sample index). Values are
the completion only — no request headers, no keys, no secrets. WAL mode and a busy timeout make it safe for
several processes (shards) writing at once; `INSERT OR IGNORE` keeps the first answer if two race.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path

from rdistill.teachers.base import Completion

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    response TEXT NOT NULL,
    created REAL NOT NULL
);
"""


class ResponseCache:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, timeout=60, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=60000")
        self._db.executescript(_SCHEMA)

    def get(self, key: str) -> Completion | None:
        with self._lock:
            row = self._db.execute("SELECT response FROM responses WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        comp = Completion.from_dict(json.loads(row[0]))
        comp.cached = True
        return comp

    def put(self, key: str, provider: str, model: str, completion: Completion) -> None:
        data = completion.to_dict()
        data["cached"] = False
        blob = json.dumps(data, ensure_ascii=False)
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO responses (key, provider, model, response, created) VALUES (?, ?, ?, ?, ?)",
                (key, provider, model, blob, time.time()))

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    def merge_from(self, other: str | Path) -> int:
        """Copy every entry of another cache file (a shard's) into this one. Returns how many were new."""
        before = len(self)
        with self._lock:
            self._db.execute("ATTACH DATABASE ? AS other", (str(other),))
            try:
                self._db.execute("INSERT OR IGNORE INTO responses SELECT * FROM other.responses")
            finally:
                self._db.execute("DETACH DATABASE other")
        return len(self) - before

    def close(self) -> None:
        with self._lock:
            self._db.close()
