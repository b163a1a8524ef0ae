"""Slow: the real SmolLM2-135M student from the offline catalog, and two CPU processes under accelerate launch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from test_train_random_student import (ONE_THREAD, one_torch_thread, train_files,  # noqa: E402,F401  (fixtures)
                                       write_traces)

from rdistill.train import TrainSettings, load_prompt_format, train_student  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SMOLLM2 = "offline:smollm2-135m-instruct"


@pytest.fixture(scope="module")
def smollm2():
    from rdistill.errors import RdistillError
    from rdistill.models import offline_hf_folder

    try:
        return offline_hf_folder("smollm2-135m-instruct")
    except RdistillError as e:  # not installed here: the catalog says how to install it
        pytest.skip(str(e))


@pytest.mark.slow
def test_real_smollm2_student_masks_its_own_template_and_saves_a_merged_model(smollm2, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rdistill.train.examples import Example
    from rdistill.train.tokenize import IGNORE, tokenize_example

    tokenizer = AutoTokenizer.from_pretrained(smollm2)
    prompt = [{"role": "user", "content": "What is 2 + 2?"}]
    row = tokenize_example(tokenizer, Example(prompt, "2 + 2 = 4. The answer is 4."))
    prompt_ids = tokenizer.apply_chat_template(prompt, tokenize=True, add_generation_prompt=True,
                                               return_dict=True)["input_ids"]
    assert row["labels"][:len(prompt_ids)] == [IGNORE] * len(prompt_ids)  # SmolLM2's default system prompt too
    assert tokenizer.decode(row["input_ids"][len(prompt_ids):]) == "2 + 2 = 4. The answer is 4.<|im_end|>\n"

    traces = write_traces(tmp_path / "traces.jsonl", 8)
    out = tmp_path / "student"
    settings = TrainSettings(student=SMOLLM2, output_dir=out, max_steps=2, batch_size=2, max_length=384,
                             save_steps=100, save_merged=True)  # the merged copy is opt-in
    result = train_student(traces, settings, method="cot_sft")
    assert result.steps == 2 and result.final_loss > 0
    model = AutoModelForCausalLM.from_pretrained(out)
    tok = AutoTokenizer.from_pretrained(out)
    messages = load_prompt_format(out).messages("Sam has 5 apples and eats 2. How many are left?")
    inputs = tok.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    text = tok.decode(model.generate(**inputs, max_new_tokens=12, do_sample=False)[0, inputs["input_ids"].shape[1]:])
    assert text.strip()
    adapter = json.loads((out / "adapter" / "adapter_config.json").read_text())
    assert adapter["base_model_name_or_path"] == SMOLLM2


@pytest.mark.slow
def test_accelerate_launch_with_two_cpu_processes_matches_one_process(train_files, tmp_path):
    """Two processes with batch 2 each see the same examples per step as one process with batch 4: same curve.

    On a machine without a GPU, `--multi_gpu` only means "start N processes torchrun-style"; they form a gloo group.
    """
    traces, student = train_files
    env = {**os.environ, **ONE_THREAD, "PYTHONPATH": str(REPO / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    common = ["train", str(traces), "--student", str(student), "--epochs", "1", "--full", "--lr", "1e-3"]
    launched = subprocess.run(
        [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
         "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "rdistill", *common,
         "--batch-size", "2", "-o", str(tmp_path / "two")],
        env=env, capture_output=True, text=True, timeout=900)
    assert launched.returncode == 0, launched.stderr[-3000:]
    train_student(traces, TrainSettings(student=str(student), output_dir=tmp_path / "one", epochs=1, lora=False,
                                        learning_rate=1e-3, batch_size=4))
    two, one = ([json.loads(line) for line in (tmp_path / name / "metrics.jsonl").read_text().splitlines()]
                for name in ("two", "one"))
    assert len(two) == len(one) == 3  # 12 traces, 4 per step: the two processes split each step's batch
    assert [r["tokens"] for r in two] == [r["tokens"] for r in one]  # tokens counted over both processes
    assert max(abs(a["loss"] - b["loss"]) for a, b in zip(two, one)) < 1e-4
