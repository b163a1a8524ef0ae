"""Slow, end to end: a LoRA student trained by rdistill, evaluated through `llamaserver:STUDENT_FOLDER` (llama.cpp's
llama-server serving the base GGUF with the exported adapter) by `rdistill eval`, as the quickstart evaluates its
students.

The real SmolLM2-135M GGUF is the base; a LoRA (all linear layers) is trained for a few steps at a high learning
rate, so that the student's greedy answers differ from the base's. The test checks that

- `rdistill eval --model llamaserver:FOLDER` writes one result per problem with real predictions, recorded under
  the student's own identity (FOLDER@lora:HASH+BASE), and exports the adapter into the folder (adapter.gguf);
- the served model is not the base: the base, asked the same questions through `llamaserver:offline:...`, answers
  differently;
- llama-server was started with `--lora FOLDER/adapter.gguf`, and its /lora-adapters endpoint lists that adapter
  at scale 1.
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest

from conftest import run_cli
from support.llama_server import SMOLLM2, smollm2_server_missing
from rdistill.jsonl import load_records
from rdistill.records import EvalResult

torch = pytest.importorskip("torch")
pytest.importorskip("peft")
pytest.importorskip("trl")
pytest.importorskip("gguf")
pytest.importorskip("httpx")

pytestmark = pytest.mark.slow

LIMIT = 4
EVAL_ARGS = ["--bench", "synth:arithmetic", "--limit", str(LIMIT), "--steps", "1-2", "--prompt-style", "plain",
             "--max-tokens", "48", "--faithfulness-n", "0", "--no-cache"]
# One llama.cpp thread: on 2 shared cores, threads that wait on each other at every step are many times slower.
ONE_THREAD = {"RDISTILL_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def student(tmp_path_factory) -> Path:
    """A cot_sft LoRA student of SmolLM2-135M: 4 steps on 8 gold arithmetic traces at lr 3e-3 (15x the usual LoRA
    lr, no warmup), enough for its greedy answers to leave the base's (~15 s on one thread)."""
    missing = smollm2_server_missing()
    if missing:
        pytest.skip(missing)
    from test_train_random_student import write_traces

    from rdistill.train import TrainSettings, train_student

    # One torch thread: on 2 shared cores two threads that spin against each other (or against a llama-server)
    # made a training step 7x slower (measured 24 s against 3.3 s).
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        root = tmp_path_factory.mktemp("llamaserver-student")
        traces = write_traces(root / "traces.jsonl", 8, steps=(1, 2))
        folder = root / "student"
        settings = TrainSettings(student=f"offline:{SMOLLM2}", output_dir=folder, max_steps=4, batch_size=2,
                                 max_length=256, learning_rate=3e-3, warmup_ratio=0.0, lora_dropout=0.0,
                                 save_steps=100)
        result = train_student(traces, settings, method="cot_sft")
    finally:
        torch.set_num_threads(before)
    assert result.steps == 4
    assert (folder / "adapter" / "adapter_config.json").is_file()
    assert json.loads((folder / "adapter" / "adapter_config.json").read_text())["base_model_name_or_path"] == \
        f"offline:{SMOLLM2}"
    return folder


def _eval(model: str, output: Path) -> list[EvalResult]:
    done = run_cli("eval", "--model", model, *EVAL_ARGS, "-o", str(output), env=ONE_THREAD, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"wrote {output}" in done.stdout.replace("\n", "")
    return load_records(output, EvalResult)


@pytest.mark.timeout(600)
def test_rdistill_eval_serves_a_trained_lora_student_through_llama_server(student, tmp_path):
    results = _eval(f"llamaserver:{student}", tmp_path / "student.jsonl")
    assert len(results) == LIMIT and len({r.problem_id for r in results}) == LIMIT
    assert all(r.prediction.strip() for r in results)  # real answers, not failed calls
    assert all(r.usage.completion_tokens > 0 for r in results)
    run = results[0].metadata["run"]
    assert run["provider"] == "llamaserver"
    # Served under the student's own identity (so the response cache can never hand it the base's answers).
    assert re.fullmatch(rf"llamaserver:{student.name}@lora:[0-9a-f]{{12}}\+{SMOLLM2}", run["model_id"]), run["model_id"]
    summary = json.loads((tmp_path / "student.summary.json").read_text())
    assert summary["accuracy"]["accuracy"]["n"] == LIMIT and summary["accuracy"]["errors"] == 0
    stamp = json.loads((student / "adapter.gguf.json").read_text())  # exported on first use, cached beside it
    assert (student / "adapter.gguf").is_file() and stamp["base"].endswith(".gguf")

    base = _eval(f"llamaserver:offline:{SMOLLM2}", tmp_path / "base.jsonl")
    assert [r.problem_id for r in base] == [r.problem_id for r in results]
    assert base[0].metadata["run"]["model_id"] == f"llamaserver:{SMOLLM2}"
    differ = [r.problem_id for r, b in zip(results, base) if r.prediction != b.prediction]
    print("student:", [r.prediction[:60] for r in results])
    print("base:   ", [b.prediction[:60] for b in base])
    # Greedy on the same prompts: a server that ignored the adapter would answer exactly as the base does.
    assert len(differ) >= LIMIT // 2, f"only {differ} differ from the base model's answers"


def test_llama_server_is_started_with_the_exported_adapter_and_loads_it(student, tmp_path):
    import httpx

    from rdistill.teachers import Request, SamplingParams, make_teacher

    client = make_teacher(f"llamaserver:{student}", cache=False,
                          backend_options={"slots": 1, "threads": 1, "ctx_per_slot": 512, "log_dir": tmp_path})
    try:
        completion = client.complete(Request.chat("What is 3 + 4?", params=SamplingParams(temperature=0.0,
                                                                                           max_tokens=8)))
        server = client.backend.server
        command = list(server.command)
        # llama-server's own account of the adapters it loaded (GET /lora-adapters: id, path, scale).
        adapters = httpx.get(f"{server.root_url}/lora-adapters", timeout=10, trust_env=False).json()
    finally:
        asyncio.run(client.aclose())
    assert completion.text.strip()
    assert command[command.index("--lora") + 1] == str(student / "adapter.gguf")
    assert command[command.index("-m") + 1] == str(client.backend.served.gguf)
    assert [(Path(a["path"]), float(a["scale"])) for a in adapters] == [(student / "adapter.gguf", 1.0)], adapters
