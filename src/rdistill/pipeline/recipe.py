"""The recipe: teacher, student, data, generation, filters, training methods, evaluation and report in one YAML file.

    loaded = load_recipe("recipes/quickstart.yaml", overrides=["train.epochs=3", "data.eval.transfer.limit=50"])
    loaded.recipe.train.methods["cot_sft"].lr

Validation collects every problem before failing, and each one names where it is: `FILE:LINE: field 'a.b.c': …`
(an unknown key also gets the closest known ones), or `override 'a.b=c': …` for a command-line override. An override
is `key.path=value`, the value parsed as YAML (so `3` is a number, `true` a boolean, `[a, b]` a list) and validated
exactly like the file.

Paths (the fields marked PathStr) are resolved once, at load time:
- a relative path in the file is relative to the recipe file's folder;
- a relative path in an override is relative to the current directory (where it was typed);
- `{cwd}` stands for the current directory, `{recipe}` for the recipe's folder and `{bundled}` for the benchmark
  subsets shipped inside the package (rdistill.data.BUNDLED_DATA); `~` and `$VAR` are expanded.
The embedded quickstart reads its GSM8K and MultiArith problems from `{bundled}`, so it runs from any folder with no
network; `data.eval.transfer.path=...` points elsewhere.
Model strings (teacher.model, student.model, ...) are plain values, passed on as they are.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import os
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Iterator, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, field_validator, model_validator

from rdistill.errors import InputError, RdistillError

QUICKSTART_FILE = "quickstart.yaml"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class _PathMarker:
    """Annotated metadata: this string field is a filesystem path, resolved at load time."""

    def __repr__(self) -> str:
        return "PATH"


PATH = _PathMarker()
PathStr = Annotated[str, PATH]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=False)


# -- data ----------------------------------------------------------------------------------------------------------

class ProblemSource(_Strict):
    """Where problems come from: exactly one of `synth` (a built-in task), `bench` (a benchmark) or `file`."""

    synth: str | None = None  # built-in task: arithmetic, last_letters, coin_flip, date_arith, facts
    bench: str | None = None  # benchmark name: gsm8k, multiarith, svamp, ...
    file: PathStr | None = None  # a problems JSONL file
    path: PathStr | None = None  # bench: local upstream file or folder (default: the Hugging Face hub)
    n: int | None = Field(None, ge=1)  # synth: how many problems
    steps: str | None = None  # synth: reasoning steps, "1-4" or "5" (default 1-4)
    seed: int = 0  # synth: which problems are drawn
    split: str | None = None  # default: train for training data, test for evaluation sets
    limit: int | None = Field(None, ge=1)  # bench / file: the first N problems
    options: dict[str, Any] = Field(default_factory=dict)  # synth: task options

    @field_validator("steps", mode="before")
    @classmethod
    def _steps_text(cls, value):
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @model_validator(mode="after")
    def _one_kind(self):
        kinds = [k for k in ("synth", "bench", "file") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError("give exactly one of synth (a built-in task), bench (a benchmark) or file (a problems "
                             f"JSONL), got {', '.join(kinds) or 'none'}")
        kind = kinds[0]
        allowed = {"synth": {"n", "steps", "seed", "split", "options"}, "bench": {"path", "split", "limit"},
                   "file": {"limit"}}[kind]
        extra = sorted((self.model_fields_set - {"synth", "bench", "file"}) - allowed)
        if extra:
            raise ValueError(f"{', '.join(extra)} do{'es' if len(extra) == 1 else ''} not apply to a {kind} source "
                             f"(it takes {', '.join(sorted(allowed))})")
        if kind == "synth" and self.n is None:
            raise ValueError("a synth source needs n, the number of problems")
        return self

    @property
    def kind(self) -> str:
        return "synth" if self.synth else "bench" if self.bench else "file"


class DataConfig(_Strict):
    train: list[ProblemSource] = Field(default_factory=list)  # mixed in order; see dedup (empty only with `reuse`)
    dedup: bool = True  # drop training problems whose question repeats an earlier one
    eval: dict[str, ProblemSource] = Field(default_factory=dict)  # named evaluation sets
    # Problems of the training distribution, in neither the training data nor an evaluation set, on which the
    # baseline's prompt (plain or the teacher's) is chosen before it is evaluated once per set (default split:
    # validation). Without it the baseline is evaluated with both prompts and the report picks per set.
    validation: ProblemSource | None = None


# -- models --------------------------------------------------------------------------------------------------------

class TeacherConfig(_Strict):
    model: str  # model string for generation: offline:NAME, openai:M@URL, anthropic:M, hf:..., llamacpp:F.gguf
    eval_model: str | None = None  # how the teacher is served for evaluation (default: model)
    concurrency: int | None = Field(None, ge=1)  # calls in flight (default: the backend's)
    budget_usd: float | None = Field(None, ge=0)  # generation stops before spending more
    prices: PathStr | None = None  # price table (JSON/YAML) for API teachers
    # Passed to the backend as it is made, for generation and evaluation: e.g. {n_threads: 1} for llama.cpp
    # (offline:, llamacpp:) on a busy machine. They change speed, not answers, so they are not part of any key.
    backend_options: dict[str, Any] = Field(default_factory=dict)


class StudentConfig(_Strict):
    model: str  # what training starts from: offline:NAME, hf:ORG/NAME or a model folder
    baseline_model: str | None = None  # how the untrained student is served for evaluation (default: model)
    trained_model: str = "{folder}"  # how a trained student is served for evaluation; {folder} is its folder
    # Passed to the backend that serves the untrained and the trained students for evaluation, like the teacher's:
    # e.g. {slots: 32, threads: 16} for llamaserver: on a big machine. Speed only, not part of any key.
    backend_options: dict[str, Any] = Field(default_factory=dict)


# -- stages --------------------------------------------------------------------------------------------------------

class GenerateConfig(_Strict):
    strategy: str = "cot"  # cot, rationalize, orca, domain:NAME, contrastive
    samples: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0)
    top_p: float = Field(1.0, ge=0, le=1)
    max_tokens: int = Field(512, ge=1)
    seed: int | None = 0
    adaptive: bool = False
    vote_threshold: float = 0.7
    max_samples: int = Field(8, ge=1)
    adaptive_gold: bool = False
    templates: PathStr | None = None
    rewrite_attempts: int = Field(2, ge=0)
    logprobs: int = Field(0, ge=0, le=100)  # the teacher's top-k per token, stored with each trace (method kd)
    limit: int | None = Field(None, ge=1)  # only the first N training problems


class FilterSettings(_Strict):
    require_correct: bool = True
    majority: bool = False
    min_steps: int | None = Field(None, ge=0)
    max_steps: int | None = Field(None, ge=0)
    max_chars: int | None = Field(None, ge=1)
    check_arithmetic: bool = True
    check_grounded: bool = False
    dedup: bool = False
    dedup_threshold: float = Field(0.9, gt=0, le=1)
    symbolic: bool = False
    sandbox: bool = False
    sandbox_timeout: float = Field(5.0, gt=0)
    sandbox_memory_mb: int = Field(256, ge=16)


# The training knobs a recipe may set are TrainSettings' own fields (one list, kept in rdistill.train.settings),
# less what the pipeline decides itself; a few keep their shorter recipe/CLI names.
PIPELINE_DECIDES = ("student", "output_dir", "resume", "dataloader_workers")
RECIPE_NAMES = {"learning_rate": "lr"}


def _train_common_fields() -> dict[str, Any]:
    import dataclasses

    from rdistill.train.settings import TrainSettings

    hints = typing.get_type_hints(TrainSettings)
    fields_: dict[str, Any] = {}
    for f in dataclasses.fields(TrainSettings):
        if f.name in PIPELINE_DECIDES:
            continue
        default = f.default if f.default_factory is dataclasses.MISSING else Field(default_factory=f.default_factory)
        fields_[RECIPE_NAMES.get(f.name, f.name)] = (hints[f.name], default)
    return fields_


TrainCommon = create_model(
    "TrainCommon", __base__=_Strict, __module__=__name__,
    __doc__="Training settings (rdistill.train.TrainSettings); set under `train:` for every method, or per method.",
    **_train_common_fields())


SETTING_FIELDS = tuple(TrainCommon.model_fields)


class MethodEntry(TrainCommon):
    method: str | None = None  # the training method (default: the entry's name)
    options: dict[str, Any] = Field(default_factory=dict)  # the method's own options
    # Also evaluate the student through these of its tasks (step_by_step: [rationale]), beside the way it answers.
    eval_tasks: list[str] = Field(default_factory=list)


class LaunchConfig(_Strict):
    """Train through `accelerate launch` (several GPUs, or several CPU processes)."""

    num_processes: int = Field(2, ge=1)
    multi_gpu: bool = True
    mixed_precision: Literal["no", "fp16", "bf16"] | None = None
    args: list[str] = Field(default_factory=list)  # more `accelerate launch` arguments


class TrainConfig(TrainCommon):
    methods: dict[str, MethodEntry] = Field(default_factory=dict)  # one student per entry
    accelerate: LaunchConfig | None = None

    @field_validator("methods", mode="before")
    @classmethod
    def _empty_entries(cls, value):
        if isinstance(value, dict):  # `cot_sft:` with nothing under it is an entry with the defaults
            return {k: ({} if v is None else v) for k, v in value.items()}
        return value

    def settings_for(self, name: str) -> dict[str, Any]:
        """The resolved settings of method entry `name`: train-wide values overridden by the entry's own."""
        entry = self.methods[name]
        values = {k: getattr(self, k) for k in SETTING_FIELDS}
        values.update({k: getattr(entry, k) for k in entry.model_fields_set if k in SETTING_FIELDS})
        return values

    def method_of(self, name: str) -> str:
        return self.methods[name].method or name


class ReuseConfig(_Strict):
    """Evaluate the students of a finished run instead of training new ones (e.g. recipes/limits.yaml): its
    training problems are this run's (so no evaluation question can be one of them), nothing is generated or
    trained, and each student is evaluated from that run's folder as `student.trained_model` serves it."""

    run: PathStr  # the finished run folder
    students: list[str] | None = None  # which of its students (default: every finished one)


class StarConfig(_Strict):
    """STaR (pipeline/star.py): the student answers its training problems, rationalizes the ones it got wrong, and
    a new student is trained from the base on what is right; `iterations` times, or until training accuracy stops
    rising. Evaluated as the model named `star`."""

    iterations: int = Field(3, ge=1)
    rationalize: bool = True  # false: the paper's ablation, correct answers only
    rationalizer: str | None = None  # who writes rationales for the wrong answers (default: the student itself)
    temperature: float = Field(0.0, ge=0)  # the student's answers: greedy by default
    method: str = "cot_sft"  # how each iteration's student is trained (with the recipe's train settings)


class TargetedConfig(_Strict):
    """Targeted distillation (pipeline/targeted.py): a trained student answers a pool of training-side problems,
    the teacher writes traces for the ones it fails, and a new student trains on its entry's traces plus those.
    Evaluated as the model `targeted` (and `targeted_random`, the control at the same teacher budget)."""

    student: str  # the method entry whose trained student is probed (and whose method and settings are reused)
    pool: ProblemSource  # training-side problems; any that is a training or evaluation question is dropped
    control: bool = True  # also the same number of random pool problems sent to the teacher
    seed: int = 0  # the control's draw


class EvalConfig(_Strict):
    models: list[str] | None = None  # teacher, baseline and trained students by name (default: all of them)
    sets: list[str] | None = None  # names of data.eval sets (default: all of them)
    samples: int = Field(1, ge=1)
    temperature: float | None = Field(None, ge=0)  # default: greedy for one sample
    top_p: float = Field(1.0, ge=0, le=1)
    max_tokens: int = Field(512, ge=1)
    seed: int | None = 0
    faithfulness_n: int = Field(20, ge=0)
    judge: str | None = None
    batch_size: int = Field(16, ge=1)  # rows per batch for local transformers models
    concurrency: int | None = Field(None, ge=1)


class ReportConfig(_Strict):
    hourly_usd: float = Field(1.0, ge=0)  # the assumed price of an hour of the machine that ran the stages
    prices: PathStr | None = None
    allow_mismatch: bool = False
    compare_with: list[str] = Field(default_factory=list)  # API models (price table names) for the break-even


class Recipe(_Strict):
    name: str
    description: str = ""
    cache: bool | PathStr = True  # the response cache: true (the default file), false, or a file
    teacher: TeacherConfig
    student: StudentConfig
    data: DataConfig
    generate: GenerateConfig = Field(default_factory=GenerateConfig)
    filter: FilterSettings = Field(default_factory=FilterSettings)
    train: TrainConfig = Field(default_factory=TrainConfig)
    star: StarConfig | None = None
    targeted: TargetedConfig | None = None
    reuse: ReuseConfig | None = None
    eval: EvalConfig = Field(default_factory=EvalConfig)
    report: ReportConfig = Field(default_factory=ReportConfig)

    @field_validator("name")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(f"{value!r} names the run folder: use letters, digits, '-', '_' and '.'")
        return value

    # -- what the recipe asks for ----------------------------------------------------------------------------------

    def eval_models(self) -> list[str]:
        """teacher, baseline and method names, in the order they are evaluated."""
        default = ["teacher", "baseline", *self.train.methods, *self.loop_models(), *self.reused_students()]
        return list(self.eval.models) if self.eval.models is not None else default

    def reused_students(self) -> list[str]:
        """The finished run's students this recipe evaluates (`reuse`), by their names there."""
        if self.reuse is None:
            return []
        if self.reuse.students is not None:
            return list(self.reuse.students)
        train = Path(self.reuse.run) / "train"
        return sorted(p.name for p in train.iterdir() if (p / "rdistill_train.json").is_file()) if train.is_dir() else []

    def loop_models(self) -> list[str]:
        """The students the closed-loop stages make (STaR, targeted), by the names they are evaluated under."""
        targeted = ["targeted", *(["targeted_random"] if self.targeted.control else [])] if self.targeted else []
        return [*(["star"] if self.star else []), *targeted]

    def eval_sets(self) -> list[str]:
        return list(self.eval.sets) if self.eval.sets is not None else list(self.data.eval)

    def seeds(self) -> dict[str, Any]:
        return {"data.train": [s.seed for s in self.data.train if s.kind == "synth"],
                "data.eval": {k: s.seed for k, s in self.data.eval.items() if s.kind == "synth"},
                **({"data.validation": self.data.validation.seed}
                   if self.data.validation is not None and self.data.validation.kind == "synth" else {}),
                "generate": self.generate.seed,
                "train": {name: self.train.settings_for(name)["seed"] for name in self.train.methods},
                "eval": self.eval.seed}


# -- loading -------------------------------------------------------------------------------------------------------

Loc = tuple[Any, ...]


@dataclass
class Issue:
    loc: Loc
    message: str


class RecipeError(InputError):
    """Everything wrong with a recipe, each issue located in the file (FILE:LINE) or the override that caused it."""

    def __init__(self, issues: list[tuple[str, str | None, int | None, str | None]]):
        # (message, origin, line, field) per issue
        self.issues = issues
        message, origin, line, fld = issues[0]
        super().__init__(message, path=origin, line=line, field=fld)

    def __str__(self) -> str:
        parts = [str(InputError(m, path=o, line=ln, field=f)) for m, o, ln, f in self.issues]
        return parts[0] if len(parts) == 1 else f"{len(parts)} problems: " + "; ".join(parts)


@dataclass
class LoadedRecipe:
    recipe: Recipe
    source: str  # the file it was read from
    text: str  # the file's text, as read
    overrides: list[str] = field(default_factory=list)
    base_dir: Path = field(default_factory=Path.cwd)  # where its relative paths start
    embedded: bool = False

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()


def quickstart_path() -> Path:
    """The embedded quickstart recipe (package data; recipes/quickstart.yaml in the repository is the same file)."""
    return Path(__file__).with_name(QUICKSTART_FILE)


def load_quickstart(overrides: list[str] = (), *, check_files: bool = True) -> LoadedRecipe:
    """The embedded quickstart recipe; its relative paths start at the current directory."""
    path = quickstart_path()
    return _load_text(path.read_text(encoding="utf-8"), str(path), Path.cwd(), list(overrides), check_files,
                      embedded=True)


def load_recipe(path: str | Path, overrides: list[str] = (), *, check_files: bool = True) -> LoadedRecipe:
    """Read, override, validate and resolve a recipe file. Raises RecipeError naming every problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError("no such recipe file", path=path) from None
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read the recipe: {e}", path=path) from None
    return _load_text(text, str(path), path.resolve().parent, list(overrides), check_files)


def load_recipe_text(text: str, *, origin: str = "<recipe>", base_dir: str | Path | None = None,
                     overrides: list[str] = (), check_files: bool = True) -> LoadedRecipe:
    return _load_text(text, origin, Path(base_dir) if base_dir else Path.cwd(), list(overrides), check_files)


def _load_text(text: str, origin: str, base_dir: Path, overrides: list[str], check_files: bool,
               embedded: bool = False) -> LoadedRecipe:
    data, lines = read_yaml_with_lines(text, origin)
    override_locs: dict[Loc, str] = {}
    for item in overrides:
        loc, value = parse_override(item)
        apply_override(data, loc, value, item)
        override_locs[loc] = item
    places = _Places(origin, lines, override_locs)
    try:
        recipe = Recipe.model_validate(data)
    except ValidationError as e:
        raise places.error([_pydantic_issue(err, data) for err in e.errors()]) from None
    resolve_paths(recipe, base_dir=base_dir, cwd=Path.cwd(), override_locs=set(override_locs))
    issues = check_recipe(recipe, check_files=check_files)
    if issues:
        raise places.error(issues)
    return LoadedRecipe(recipe, origin, text, overrides, base_dir, embedded)


# -- YAML with line numbers ----------------------------------------------------------------------------------------

def read_yaml_with_lines(text: str, origin: str) -> tuple[dict, dict[Loc, int]]:
    """The YAML document as Python data, and the 1-based line of every key and list item by its path."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else {}
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        raise InputError(f"invalid YAML: {e.problem or e.context}", path=origin,
                         line=mark.line + 1 if mark else None) from None
    except yaml.YAMLError as e:
        raise InputError(f"invalid YAML: {e}", path=origin) from None
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        raise InputError(f"a recipe is a YAML mapping of keys (name, teacher, student, data, ...), got "
                         f"{type(data).__name__}", path=origin, line=1)
    lines: dict[Loc, int] = {(): 1}
    _collect_lines(node, (), lines, origin)
    return data, lines


def _collect_lines(node: yaml.Node, loc: Loc, lines: dict[Loc, int], origin: str) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else repr(key_node)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise InputError(f"key {key!r} appears twice (first on line {seen[key]})", path=origin, line=line,
                                 field=_dotted(loc + (key,)))
            seen[key] = line
            lines[loc + (key,)] = line
            _collect_lines(value_node, loc + (key,), lines, origin)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines[loc + (index,)] = item.start_mark.line + 1
            _collect_lines(item, loc + (index,), lines, origin)


# -- overrides -----------------------------------------------------------------------------------------------------

def parse_override(text: str) -> tuple[Loc, Any]:
    """'train.methods.cot_sft.epochs=3' -> (('train', 'methods', 'cot_sft', 'epochs'), 3)."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    where = f"override {text!r}"
    if not sep or not key:
        raise InputError("expected KEY.PATH=VALUE, e.g. train.epochs=3", path=where)
    parts = key.split(".")
    if any(not p.strip() for p in parts):
        raise InputError(f"{key!r} is not a key path: write names joined by dots, e.g. eval.max_tokens", path=where)
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as e:
        raise InputError(f"the value is not valid YAML ({getattr(e, 'problem', None) or e})", path=where) from None
    return tuple(p.strip() for p in parts), value


def apply_override(data: dict, loc: Loc, value: Any, text: str) -> None:
    """Set `loc` in `data` to `value`, making the mappings on the way; a number indexes a list."""
    node: Any = data
    for depth, part in enumerate(loc):
        last = depth == len(loc) - 1
        here = _dotted(loc[:depth]) or "the recipe"
        if isinstance(node, list):
            if not re.fullmatch(r"-?\d+", part) or not -len(node) <= int(part) < len(node):
                raise InputError(f"{here} is a list of {len(node)}: index it with 0..{len(node) - 1}, "
                                 f"not {part!r}", path=f"override {text!r}", field=_dotted(loc[:depth + 1]))
            part = int(part)
        elif not isinstance(node, dict):
            raise InputError(f"{here} is a value ({node!r}), not a section with keys", path=f"override {text!r}",
                             field=_dotted(loc[:depth + 1]))
        if last:
            node[part] = copy.deepcopy(value)
            return
        if isinstance(node, dict) and node.get(part) is None:
            node[part] = {}
        node = node[part]


# -- issues and where they are -------------------------------------------------------------------------------------

@dataclass
class _Places:
    origin: str
    lines: dict[Loc, int]
    overrides: dict[Loc, str]

    def where(self, loc: Loc) -> tuple[str, int | None]:
        for n in range(len(loc), 0, -1):
            if loc[:n] in self.overrides:
                return f"override {self.overrides[loc[:n]]!r}", None
        if loc not in self.lines:  # a key the file does not have: made by an override below it?
            for override_loc, text in self.overrides.items():
                if override_loc[:len(loc)] == loc:
                    return f"override {text!r}", None
        for n in range(len(loc), -1, -1):
            if loc[:n] in self.lines:
                return self.origin, self.lines[loc[:n]]
        return self.origin, None

    def error(self, issues: list[Issue]) -> RecipeError:
        unique, seen = [], set()
        for issue in issues:
            if issue.loc not in seen:  # a union field fails once per member: one message is enough
                seen.add(issue.loc)
                unique.append(issue)
        located = []
        for issue in unique:
            origin, line = self.where(issue.loc)
            located.append((issue.message, origin, line, _dotted(issue.loc) or None))
        return RecipeError(located)


def _pydantic_issue(err: dict, data: Any) -> Issue:
    loc = _clean_loc(tuple(err["loc"]))
    message = err["msg"]
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    if err["type"] == "extra_forbidden":
        message = unknown_key_message(loc)
    elif err["type"] == "missing":
        message = "missing: this key is required"
    return Issue(loc, message)


def unknown_key_message(loc: Loc) -> str:
    key = loc[-1]
    model = model_at(Recipe, loc[:-1])
    known = sorted(model.model_fields) if model is not None else []
    close = difflib.get_close_matches(str(key), known, n=3, cutoff=0.5)
    message = f"unknown key {key!r}."
    if close:
        message += f" Did you mean {', '.join(repr(c) for c in close)}?"
    if loc[:-1] == ("data",) and key not in known:
        message += f" (Evaluation sets go under data.eval: data.eval.{key}.)"
    return message + (f" Known: {', '.join(known)}." if known else "")


def model_at(root: type[BaseModel], loc: Loc) -> type[BaseModel] | None:
    """The pydantic model class that validates the value at `loc` (None if it is not a model)."""
    tp: Any = root
    for part in loc:
        tp = _unwrap(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            info = tp.model_fields.get(part) if isinstance(part, str) else None
            if info is None:
                return None
            tp = info.annotation
        elif typing.get_origin(tp) is dict:
            tp = typing.get_args(tp)[1]
        elif typing.get_origin(tp) is list:
            tp = typing.get_args(tp)[0]
        else:
            return None
    tp = _unwrap(tp)
    return tp if isinstance(tp, type) and issubclass(tp, BaseModel) else None


def _unwrap(tp: Any) -> Any:
    """Optional[X] / X | None / Annotated[X, ...] -> X (the first model, dict or list of a union)."""
    while True:
        origin = typing.get_origin(tp)
        if origin is Annotated:
            tp = typing.get_args(tp)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            structured = [a for a in args if typing.get_origin(_strip(a)) in (dict, list)
                          or (isinstance(_strip(a), type) and issubclass(_strip(a), BaseModel))]
            tp = (structured or args)[0]
        else:
            return tp


def _strip(tp: Any) -> Any:
    return typing.get_args(tp)[0] if typing.get_origin(tp) is Annotated else tp


def _clean_loc(loc: Loc) -> Loc:
    """Drop pydantic's union-member tags ('bool', 'function-after[...]') from an error location."""
    out: list[Any] = []
    tp: Any = Recipe
    for part in loc:
        tp_u = _unwrap(tp) if tp is not None else None
        if isinstance(tp_u, type) and issubclass(tp_u, BaseModel):
            if isinstance(part, str) and part in tp_u.model_fields:
                out.append(part)
                tp = tp_u.model_fields[part].annotation
                continue
            if isinstance(part, str) and ("[" in part or part in _UNION_TAGS):
                continue
            out.append(part)  # an unknown key: the last element of an extra_forbidden error
            tp = None
        elif typing.get_origin(tp_u) is dict:
            out.append(part)
            tp = typing.get_args(tp_u)[1]
        elif typing.get_origin(tp_u) is list and isinstance(part, int):
            out.append(part)
            tp = typing.get_args(tp_u)[0]
        elif isinstance(part, str) and ("[" in part or part in _UNION_TAGS):
            continue
        else:
            out.append(part)
            tp = None
    return tuple(out)


_UNION_TAGS = {"bool", "str", "int", "float", "list", "dict", "none", "literal"}


def _dotted(loc: Loc) -> str:
    return ".".join(str(p) for p in loc)


# -- paths ---------------------------------------------------------------------------------------------------------

def path_fields(obj: Any, loc: Loc = ()) -> Iterator[tuple[Loc, BaseModel, str]]:
    """(location, owning model, field name) of every PathStr field holding a string, depth first."""
    if isinstance(obj, BaseModel):
        for name, info in type(obj).model_fields.items():
            value = getattr(obj, name)
            if isinstance(value, str) and _is_path_annotation(info.annotation, info.metadata):
                yield loc + (name,), obj, name
            else:
                yield from path_fields(value, loc + (name,))
    elif isinstance(obj, dict):
        for key, value in obj.items():
            yield from path_fields(value, loc + (key,))
    elif isinstance(obj, list):
        for index, value in enumerate(obj):
            yield from path_fields(value, loc + (index,))


def _is_path_annotation(annotation: Any, metadata: list) -> bool:
    if any(m is PATH for m in metadata):
        return True
    if typing.get_origin(annotation) is Annotated:
        return any(m is PATH for m in typing.get_args(annotation)[1:])
    return any(_is_path_annotation(a, []) for a in typing.get_args(annotation))


def resolve_paths(recipe: Recipe, *, base_dir: Path, cwd: Path, override_locs: set[Loc]) -> None:
    for loc, owner, name in list(path_fields(recipe)):
        raw = getattr(owner, name)
        from_override = any(loc[:n] in override_locs for n in range(1, len(loc) + 1))
        setattr(owner, name, resolve_path(raw, base=cwd if from_override else base_dir, cwd=cwd, recipe_dir=base_dir))


def resolve_path(raw: str, *, base: Path, cwd: Path, recipe_dir: Path) -> str:
    from rdistill.data import BUNDLED_DATA

    text = raw.replace("{cwd}", str(cwd)).replace("{recipe}", str(recipe_dir)).replace("{bundled}", str(BUNDLED_DATA))
    path = Path(os.path.expanduser(os.path.expandvars(text)))
    if not path.is_absolute():
        path = base / path
    return os.path.normpath(path)


# -- checks beyond types -------------------------------------------------------------------------------------------

def check_recipe(recipe: Recipe, *, check_files: bool = True) -> list[Issue]:
    """Every problem pydantic's types cannot see: names of tasks, benchmarks, methods, strategies, model strings,
    options the stage functions would refuse, files that do not exist."""
    issues: list[Issue] = []

    def guard(loc: Loc, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except InputError as e:
            model = model_at(Recipe, loc)
            known = model is not None and e.field in model.model_fields
            issues.append(Issue(loc + (e.field,) if known else loc, e.message))
        except (RdistillError, ValueError) as e:
            issues.append(Issue(loc, str(e)))
        return None

    for loc, spec in (("teacher", "model"), ("teacher", "eval_model"), ("student", "model"),
                      ("student", "baseline_model"), ("eval", "judge")):
        value = getattr(getattr(recipe, loc), spec)
        if value is not None:
            guard((loc, spec), check_model_spec, value)
    if "{folder}" not in recipe.student.trained_model:
        issues.append(Issue(("student", "trained_model"), "must contain {folder}, where the trained student's "
                                                          "folder goes (e.g. '{folder}')"))

    for i, source in enumerate(recipe.data.train):
        _check_source(source, ("data", "train", i), issues, check_files, default_split="train")
    for name, source in recipe.data.eval.items():
        if not _NAME.match(name):
            issues.append(Issue(("data", "eval", name), f"{name!r} names result folders: use letters, digits, "
                                                        "'-', '_' and '.'"))
        _check_source(source, ("data", "eval", name), issues, check_files, default_split="test")
    if recipe.data.validation is not None:
        _check_source(recipe.data.validation, ("data", "validation"), issues, check_files, default_split="validation")

    options = guard(("generate",), generation_options, recipe)
    if options is not None:
        from rdistill.generate.runner import prepare_strategy

        guard(("generate", "strategy"), prepare_strategy, recipe.generate.strategy, options)
    guard(("filter",), filter_config, recipe)

    for name in recipe.train.methods:
        loc = ("train", "methods", name)
        if not _NAME.match(name):
            issues.append(Issue(loc, f"{name!r} names the student's folder: use letters, digits, '-', '_' and '.'"))
        if name in ("teacher", "baseline", "star", "targeted", "targeted_random"):
            issues.append(Issue(loc, f"{name!r} is the name of an evaluated model: call the method entry otherwise"))
        method = _check_method(recipe, name, issues)
        if method is not None:
            try:
                _check_settings(recipe, name)
            except RdistillError as e:
                issues.append(_settings_issue(recipe, name, e))

    if recipe.star is not None:
        from rdistill.train.registry import methods

        if recipe.star.method not in methods():
            issues.append(Issue(("star", "method"), _unknown("training method", recipe.star.method, list(methods()))))
        if recipe.star.rationalizer:
            guard(("star", "rationalizer"), check_model_spec, recipe.star.rationalizer)
    if recipe.targeted is not None:
        if recipe.targeted.student not in recipe.train.methods:
            issues.append(Issue(("targeted", "student"), _unknown("method entry (the student probed)",
                                                                  recipe.targeted.student,
                                                                  list(recipe.train.methods) or ["(none)"])))
        _check_source(recipe.targeted.pool, ("targeted", "pool"), issues, check_files, default_split="train")
    if recipe.reuse is not None:
        _check_reuse(recipe, issues, check_files)
    elif not recipe.data.train:
        issues.append(Issue(("data", "train"), "no training problems: list at least one source (or evaluate a "
                                               "finished run's students with reuse: {run: FOLDER})"))
    known_models = ["teacher", "baseline", *recipe.train.methods, *recipe.loop_models(), *recipe.reused_students()]
    for i, model in enumerate(recipe.eval_models()):
        if model not in known_models:
            issues.append(Issue(("eval", "models", i), _unknown("evaluated model", model, known_models)))
    for i, name in enumerate(recipe.eval_sets()):
        if name not in recipe.data.eval:
            issues.append(Issue(("eval", "sets", i), _unknown("evaluation set (data.eval)", name,
                                                              list(recipe.data.eval) or ["(none defined)"])))
    guard(("eval",), eval_options, recipe, "teacher")

    for loc in (("teacher", "prices"), ("report", "prices"), ("generate", "templates")):
        owner = getattr(recipe, loc[0])
        value = getattr(owner, loc[1])
        if check_files and value is not None and not Path(value).is_file():
            issues.append(Issue(loc, f"no such file: {value}"))
    return issues


def _check_reuse(recipe: Recipe, issues: list[Issue], check_files: bool) -> None:
    reuse = recipe.reuse
    if recipe.data.train or recipe.train.methods or recipe.star or recipe.targeted:
        issues.append(Issue(("reuse",), "a recipe that reuses a run's students trains none: drop data.train, "
                                        "train.methods, star and targeted (the reused run's training problems are "
                                        "checked against the evaluation sets)"))
    if not check_files:
        return
    run = Path(reuse.run)
    if not (run / "manifest.json").is_file() or not (run / "data" / "train.jsonl").is_file():
        issues.append(Issue(("reuse", "run"), f"{run} is not a finished run folder (no manifest.json and "
                                              "data/train.jsonl)"))
        return
    finished = sorted(p.name for p in (run / "train").iterdir() if (p / "rdistill_train.json").is_file()) \
        if (run / "train").is_dir() else []
    for i, name in enumerate(reuse.students or []):
        if name not in finished:
            issues.append(Issue(("reuse", "students", i), _unknown(f"finished student of {run}", name,
                                                                    finished or ["(none)"])))
    if not finished:
        issues.append(Issue(("reuse", "run"), f"{run} has no finished student (train/NAME/rdistill_train.json)"))


def _unknown(kind: str, name: str, known: list[str]) -> str:
    from rdistill.errors import UnknownNameError

    return str(UnknownNameError(kind, name, known))


def check_model_spec(spec: str) -> None:
    """The backend prefix is known and an offline catalog name exists (nothing is loaded)."""
    from rdistill.teachers.registry import parse_spec

    if "{folder}" in spec:
        return
    offline = re.search(r"(?:^|:)offline:([^@\s]+)$", spec)
    if offline:
        from rdistill.models.catalog import get_model

        get_model(offline.group(1))
    if not spec.startswith("offline:"):
        parse_spec(spec)


def _check_source(source: ProblemSource, loc: Loc, issues: list[Issue], check_files: bool, *,
                  default_split: str) -> None:
    if source.kind == "synth":
        from rdistill.data.synth import SPLITS, TASKS, parse_steps_range

        if source.synth not in TASKS:
            issues.append(Issue(loc + ("synth",), _unknown("task", source.synth, list(TASKS))))
            return
        try:
            parse_steps_range(source.steps or "1-4", task=source.synth)
        except (ValueError, RdistillError) as e:
            issues.append(Issue(loc + ("steps",), str(e)))
        split = source.split or default_split
        if split not in SPLITS:
            issues.append(Issue(loc + ("split",), _unknown("split", split, list(SPLITS))))
    elif source.kind == "bench":
        from rdistill.data.benchmarks import BENCHMARKS, canonical_name

        if canonical_name(source.bench) not in BENCHMARKS:
            issues.append(Issue(loc + ("bench",), _unknown("benchmark", source.bench, list(BENCHMARKS))))
        if check_files and source.path is not None and not Path(source.path).exists():
            issues.append(Issue(loc + ("path",), f"no such file or folder: {source.path} (point it elsewhere with "
                                                 f"an override: {_dotted(loc)}.path=PATH)"))
    elif check_files and not Path(source.file).is_file():
        issues.append(Issue(loc + ("file",), f"no such file: {source.file}"))


def _check_method(recipe: Recipe, name: str, issues: list[Issue]):
    from rdistill.errors import UnknownNameError
    from rdistill.train.registry import get_method, parse_options

    entry = recipe.train.methods[name]
    loc = ("train", "methods", name)
    try:
        method = get_method(recipe.train.method_of(name))
    except UnknownNameError as e:
        issues.append(Issue(loc + ("method",) if entry.method else loc, str(e)))
        return None
    try:
        parse_options(method, entry.options)
    except RdistillError as e:
        issues.append(Issue(loc + ("options",), str(e)))
    for task in entry.eval_tasks:
        if task not in method.tasks:
            known = f"its tasks: {', '.join(method.tasks)}" if method.tasks else "it trains a single task"
            issues.append(Issue(loc + ("eval_tasks",), f"a {method.name} student has no task {task!r} ({known})"))
    return method


def _check_settings(recipe: Recipe, name: str) -> None:
    train_settings(recipe, name, student="check", output_dir=Path("check")).validate()


def _settings_issue(recipe: Recipe, name: str, error: RdistillError) -> Issue:
    """TrainSettings speaks in CLI flags (--batch-size); point at the recipe key that set the value instead: the
    method entry's own, or the train-wide one."""
    flag = re.search(r"--([a-z][a-z-]*)", str(error))
    message = re.sub(r"--([a-z][a-z-]*)", lambda m: m.group(1).replace("-", "_"), str(error))
    key = flag.group(1).replace("-", "_") if flag else None
    if key not in SETTING_FIELDS:
        return Issue(("train", "methods", name), message)
    if key in recipe.train.methods[name].model_fields_set:
        return Issue(("train", "methods", name, key), message)
    return Issue(("train", key), message)


# -- the library objects a recipe section becomes ------------------------------------------------------------------

def generation_options(recipe: Recipe):
    from rdistill.generate import GenerationOptions

    g = recipe.generate
    return GenerationOptions(samples=g.samples, temperature=g.temperature, top_p=g.top_p, max_tokens=g.max_tokens,
                             seed=g.seed, adaptive=g.adaptive, vote_threshold=g.vote_threshold,
                             max_samples=g.max_samples, adaptive_gold=g.adaptive_gold, templates=g.templates,
                             rewrite_attempts=g.rewrite_attempts, logprobs=g.logprobs)


def filter_config(recipe: Recipe):
    from rdistill.filter import FilterConfig, SandboxLimits

    f = recipe.filter
    return FilterConfig(require_correct=f.require_correct, majority=f.majority, min_steps=f.min_steps,
                        max_steps=f.max_steps, max_chars=f.max_chars, check_arithmetic=f.check_arithmetic,
                        check_grounded=f.check_grounded, dedup=f.dedup, dedup_threshold=f.dedup_threshold,
                        symbolic=f.symbolic, sandbox=f.sandbox,
                        sandbox_limits=SandboxLimits(wall_seconds=f.sandbox_timeout, memory_mb=f.sandbox_memory_mb))


def train_settings(recipe: Recipe, name: str, *, student: str, output_dir: Path, resume: bool = False):
    from rdistill.train import TrainSettings

    s = recipe.train.settings_for(name)
    renamed = {recipe_name: name_ for name_, recipe_name in RECIPE_NAMES.items()}
    values = {renamed.get(k, k): (list(v) if isinstance(v, list) else v) for k, v in s.items()}
    return TrainSettings(student=student, output_dir=output_dir, resume=resume, **values)


def star_train_settings(recipe: Recipe, *, student: str, output_dir: Path, resume: bool = False):
    """The train-wide settings (no method entry's), for each STaR iteration's student."""
    from rdistill.train import TrainSettings

    renamed = {recipe_name: name_ for name_, recipe_name in RECIPE_NAMES.items()}
    values = {renamed.get(k, k): (list(v) if isinstance(v, list) else v)
              for k, v in ((k, getattr(recipe.train, k)) for k in SETTING_FIELDS)}
    return TrainSettings(student=student, output_dir=output_dir, resume=resume, **values)


def eval_options(recipe: Recipe, role: str, prompt_style: str = "teacher", student_task: str | None = None,
                 prompt_choice: dict | None = None):
    from rdistill.evaluate.options import EvalOptions

    e = recipe.eval
    return EvalOptions(prompt_style=prompt_style, samples=e.samples, temperature=e.temperature, top_p=e.top_p,
                       max_tokens=e.max_tokens, seed=e.seed, role=role, faithfulness_n=e.faithfulness_n,
                       judge=e.judge, student_task=student_task, prompt_choice=prompt_choice)
