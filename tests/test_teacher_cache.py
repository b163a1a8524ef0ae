"""The response cache shared by several processes at once (shards writing one file): nothing is lost."""

from __future__ import annotations

import multiprocessing
import threading
from pathlib import Path

from rdistill.teachers.base import Completion, Request, SamplingParams
from rdistill.teachers.cache import ResponseCache

PER_WORKER = 300  # keys only one process writes
SHARED = 100  # keys both processes write, with different answers: exactly one answer must win
THREADS_PER_PROCESS = 2


def key_of(name: str) -> str:
    return Request.chat(name, params=SamplingParams(max_tokens=8)).cache_key("openai", "m")


def write_entries(path: str, worker: int, barrier) -> None:
    """Runs in a child process: two threads interleave puts and gets on one ResponseCache."""
    cache = ResponseCache(path)
    barrier.wait()  # both processes start writing at the same moment

    def write(thread: int) -> None:
        for i in range(thread, PER_WORKER, THREADS_PER_PROCESS):
            cache.put(key_of(f"own-{worker}-{i}"), "openai", "m",
                      Completion(text=f"answer {worker}/{i}", prompt_tokens=i, completion_tokens=worker))
            shared = i % SHARED
            cache.put(key_of(f"shared-{shared}"), "openai", "m", Completion(text=f"shared {shared} from {worker}"))
            cache.get(key_of(f"own-{1 - worker}-{i}"))  # reads racing the other process's writes

    threads = [threading.Thread(target=write, args=(t,)) for t in range(THREADS_PER_PROCESS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    cache.close()


def test_two_processes_writing_one_cache_file_lose_nothing(tmp_path: Path):
    path = str(tmp_path / "responses.sqlite")
    ResponseCache(path).close()  # create the schema first, as the first shard to start would
    ctx = multiprocessing.get_context("spawn")  # a clean interpreter each, as separate shard processes are
    barrier = ctx.Barrier(2)
    workers = [ctx.Process(target=write_entries, args=(path, w, barrier)) for w in (0, 1)]
    for p in workers:
        p.start()
    for p in workers:
        p.join(timeout=120)
    assert [p.exitcode for p in workers] == [0, 0]

    cache = ResponseCache(path)
    try:
        assert len(cache) == 2 * PER_WORKER + SHARED
        for worker in (0, 1):
            for i in range(PER_WORKER):
                got = cache.get(key_of(f"own-{worker}-{i}"))
                assert got is not None, (worker, i)
                assert (got.text, got.prompt_tokens, got.completion_tokens) == (f"answer {worker}/{i}", i, worker)
                assert got.cached
        for s in range(SHARED):
            got = cache.get(key_of(f"shared-{s}"))
            assert got is not None and got.text in {f"shared {s} from 0", f"shared {s} from 1"}
    finally:
        cache.close()


def test_merging_a_shard_cache_adds_only_the_new_entries(tmp_path: Path):
    main, shard = ResponseCache(tmp_path / "main.sqlite"), ResponseCache(tmp_path / "shard.sqlite")
    try:
        main.put(key_of("a"), "openai", "m", Completion(text="main a"))
        shard.put(key_of("a"), "openai", "m", Completion(text="shard a"))
        shard.put(key_of("b"), "openai", "m", Completion(text="shard b"))
        assert main.merge_from(tmp_path / "shard.sqlite") == 1
        assert main.get(key_of("a")).text == "main a"  # the first answer stays
        assert main.get(key_of("b")).text == "shard b"
    finally:
        main.close()
        shard.close()
