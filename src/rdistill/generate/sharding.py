"""`--shard I/N`: which problems one of N machines takes, by a stable hash of the problem id.

Hashing the id (not the position in the file) means shards do not move when the problem file is reordered
or grows, and the same problem always lands on the same shard, whose cache then holds its calls.
"""

from __future__ import annotations

import hashlib
from typing import Iterable, Iterator

from rdistill.generate.options import Shard
from rdistill.records import Problem


def shard_of(problem_id: str, count: int) -> int:
    digest = hashlib.sha256(problem_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % count


def select_shard(problems: Iterable[Problem], shard: Shard | None) -> Iterator[Problem]:
    for problem in problems:
        if shard is None or shard_of(problem.id, shard.count) == shard.index:
            yield problem
