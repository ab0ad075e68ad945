"""The task catalog: what miners serve and customers buy (SPEC §1).

A catalog is a TOML file with one ``[[task]]`` table per task. ``load_catalog`` validates it into
the Structs below and reports the first problem with the task and field it concerns, e.g.
``catalog dev.toml: task 'sn19-tiny-chat': text.context_length: Expected `int` >= 1, got 0``.

Two catalogs ship in ``protocol/catalogs``: ``dev`` (models that run on a CPU offline) and
``production`` (real open models on GPUs).
"""

from __future__ import annotations

import math
import tomllib
from importlib import resources
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from protocol.config import describe_validation_error
from protocol.miner import PublicTask

TaskKind = Literal["chat", "image", "embedding"]
EngineType = Literal[
    "transformers", "vllm", "diffusers", "sentence-transformers", "forward", "instant"
]
Positive = Annotated[float, Meta(gt=0)]
NonNegative = Annotated[float, Meta(ge=0)]
MicroCredits = Annotated[int, Meta(ge=0)]
BUILTIN_CATALOGS = ("dev", "production")


class CatalogError(ValueError):
    """The catalog is invalid; the message names the task and the field."""


class EngineSpec(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """Which engine loads the model, and the model: an HF repo id, a local directory,
    ``builtin:<name>`` for the tiny models built from config, or ``pypi:<package>`` for a model
    shipped inside a Python package."""

    type: EngineType
    model: Annotated[str, Meta(min_length=1)]
    revision: str | None = None
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = "auto"
    options: dict[str, str | int | float | bool] = {}


class Timeouts(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    first_token_s: Positive = 10.0
    idle_s: Positive = 10.0
    total_s: Positive = 120.0


class Price(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """Default customer prices in micro-credits (1 credit = 1,000,000 micro-credits)."""

    input_per_million: MicroCredits = 0
    output_per_million: MicroCredits = 0
    per_step: MicroCredits = 0


class TextSpec(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    context_length: Annotated[int, Meta(ge=1)]
    max_output_tokens: Annotated[int, Meta(ge=1)]
    tokenizer: str = "builtin:bytes"
    chat_template: Literal["llama3"] = "llama3"
    max_n: Annotated[int, Meta(ge=1, le=16)] = 4
    # How the model writes tool calls (``protocol.tool_calls``); None: no tool calling.
    tool_format: Literal["hermes", "llama3_json"] | None = None
    # The tokenizer's vocabulary (token ids a client may send are below it), for when the
    # tokenizer file itself is not available to the gateway; None: taken from the tokenizer.
    vocab_size: Annotated[int, Meta(ge=1)] | None = None


class ImageSpec(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    sizes: Annotated[list[str], Meta(min_length=1)]
    default_size: str
    default_steps: Annotated[int, Meta(ge=1)]
    max_steps: Annotated[int, Meta(ge=1)]
    max_n: Annotated[int, Meta(ge=1, le=10)] = 4
    guidance_scale: NonNegative = 7.5
    edits: bool = True
    inpainting: bool = False


class EmbeddingSpec(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    dimensions: Annotated[int, Meta(ge=1)]
    max_input_tokens: Annotated[int, Meta(ge=1)]
    max_inputs: Annotated[int, Meta(ge=1, le=2048)] = 2048  # OpenAI's limit
    tokenizer: str = "builtin:bytes"
    vocab_size: Annotated[int, Meta(ge=1)] | None = None


class CheckSpec(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """The checker's settings for a task (SPEC §5; the statistics are in docs/checker.md)."""

    enabled: bool = True
    # Text: reported-logprob agreement (mean |p_ref - p_miner|) mapped 1.0 at or below the
    # first bound, 0.5 at the second, 0 beyond.
    logprob_full_credit: NonNegative = 0.125
    logprob_half_credit: NonNegative = 0.25
    # Text: every reported logprob must be within this many nats of the reference's, plus
    # ``logprob_logit_tolerance`` × (1 − the smaller of the two probabilities) (checker.logprobs;
    # measured by benchmarks/checker_tolerance.py: the dev model in bfloat16 against float32).
    logprob_tolerance: NonNegative = 0.01
    logprob_logit_tolerance: NonNegative = 1.5
    # Text: over a job's informative positions, the mean |Δ log p| / tolerance and the mean
    # signed (reported − reference) / tolerance may not exceed these (honest bfloat16: at most
    # 0.28 and 0.11; checker.logprobs).
    logprob_mean_excess: NonNegative = 0.45
    logprob_signed_excess: NonNegative = 0.2
    # Text: the likelihood test's false-accusation bound per job: an honest sample fails with
    # probability at most this, at any temperature, top_p, length and vocabulary (an exact
    # likelihood-ratio bound, not a normal approximation).
    likelihood_alpha: Annotated[float, Meta(gt=0, lt=1)] = 1e-3
    # Text: the sequential "greedy instead of sampling" detector accumulates evidence over a
    # miner's jobs and alarms at 1/alpha; an honest miner sees a false alarm once per at least
    # 1/alpha jobs on average. 0 turns it off.
    sequential_alpha: Annotated[float, Meta(ge=0, lt=1)] = 1e-4
    # Text, temperature 0: a token may trail the reference argmax by this many nats (raw
    # logprob) and still count as a numerical tie (the dev model in bfloat16 trails by up to
    # 1.11; benchmarks/checker_tolerance.py).
    greedy_tolerance: NonNegative = 1.5
    # Text, top_p < 1: a token still counts as inside the nucleus when the reference mass of
    # clearly more likely tokens is below top_p + this; "clearly": its raw logit leads by
    # more than ``logit_margin`` nats (the reference's own numerical uncertainty: the same
    # bound as ``greedy_tolerance``) and its probability by 5%.
    top_p_tolerance: NonNegative = 0.02
    logit_margin: NonNegative = 1.5
    # Text, 0 < temperature < this: the likelihood test treats the tokens within
    # ``logit_margin`` of the top one as one outcome (honest bfloat16 at T = 0.1 and 0.2 is
    # otherwise rejected; never at 0.7 or above).
    tie_temperature: NonNegative = 0.5
    # Image: combined similarity at or above which the image scores 1.0 (else s²).
    image_similarity: NonNegative = 0.95
    # Image: pixel fidelity (PSNR of the delivered pixels against the regenerated reference)
    # counts fully from the first value (dB) and not at all at the second, linearly between.
    image_psnr_full: Positive = 45.0
    image_psnr_zero: Positive = 40.0
    # Embedding: cosine every vector must reach.
    embedding_cosine: NonNegative = 0.999


class Task(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    id: Annotated[str, Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")]
    kind: TaskKind
    engine: EngineSpec
    max_capacity: NonNegative
    volume_per_request: Positive
    weight: NonNegative
    display_name: str = ""
    owned_by: str = "sn19"
    created: int = 1_735_689_600
    enabled: bool = True
    timeouts: Timeouts = Timeouts()
    price: Price = Price()
    text: TextSpec | None = None
    image: ImageSpec | None = None
    embedding: EmbeddingSpec | None = None
    check: CheckSpec = CheckSpec()

    @property
    def unit(self) -> Literal["tokens", "steps"]:
        return "steps" if self.kind == "image" else "tokens"

    def public(self) -> PublicTask:
        return PublicTask(
            id=self.id,
            kind=self.kind,
            model=self.engine.model,
            unit=self.unit,
            max_capacity=self.max_capacity,
            weight=self.weight,
            volume_per_request=self.volume_per_request,
        )


class Catalog(msgspec.Struct, frozen=True):
    name: str
    tasks: tuple[Task, ...]

    def enabled(self) -> tuple[Task, ...]:
        return tuple(task for task in self.tasks if task.enabled)

    def get(self, task_id: str) -> Task | None:
        """An enabled task by id (disabled tasks are invisible everywhere)."""
        for task in self.tasks:
            if task.id == task_id and task.enabled:
                return task
        return None

    def normalized_weights(self) -> dict[str, float]:
        enabled = self.enabled()
        total = sum(task.weight for task in enabled)
        if total <= 0:
            return {task.id: 0.0 for task in enabled}
        return {task.id: task.weight / total for task in enabled}


class _CatalogFile(msgspec.Struct, forbid_unknown_fields=True):
    task: list[dict[str, Any]]
    name: str | None = None


def parse_size(size: str) -> tuple[int, int]:
    """``"64x64"`` → ``(64, 64)`` (width, height)."""
    width, sep, height = size.partition("x")
    if not sep or not width.isdigit() or not height.isdigit():
        raise ValueError(f"size must look like WIDTHxHEIGHT, got {size!r}")
    return int(width), int(height)


def _check_task(task: Task) -> None:
    spec_by_kind = {"chat": task.text, "image": task.image, "embedding": task.embedding}
    if spec_by_kind[task.kind] is None:
        section = {"chat": "text", "image": "image", "embedding": "embedding"}[task.kind]
        raise CatalogError(f"{section}: required for a task of kind {task.kind!r}")
    for kind, spec in spec_by_kind.items():
        if kind != task.kind and spec is not None:
            raise CatalogError(f"{kind}: not allowed for a task of kind {task.kind!r}")
    if task.image is not None:
        for size in task.image.sizes:
            try:
                parse_size(size)
            except ValueError as exc:
                raise CatalogError(f"image.sizes: {exc}") from None
        if task.image.default_size not in task.image.sizes:
            raise CatalogError("image.default_size: must be one of image.sizes")
        if task.image.default_steps > task.image.max_steps:
            raise CatalogError("image.default_steps: must not exceed image.max_steps")
    if task.text is not None and task.text.max_output_tokens > task.text.context_length:
        raise CatalogError("text.max_output_tokens: must not exceed text.context_length")
    if not math.isfinite(task.max_capacity):
        raise CatalogError("max_capacity: must be finite")


def load_catalog(text: str, *, source: str = "catalog") -> Catalog:
    """Parse and validate a catalog; raise ``CatalogError`` naming the bad task and field."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"{source}: not valid TOML: {exc}") from exc
    try:
        document = msgspec.convert(raw, type=_CatalogFile)
    except msgspec.ValidationError as exc:
        raise CatalogError(f"{source}: {describe_validation_error(exc)}") from exc
    tasks: list[Task] = []
    seen: set[str] = set()
    for position, entry in enumerate(document.task):
        label = (
            f"task '{entry.get('id')}'" if isinstance(entry.get("id"), str) else f"task[{position}]"
        )
        try:
            task = msgspec.convert(entry, type=Task)
            _check_task(task)
        except msgspec.ValidationError as exc:
            raise CatalogError(f"{source}: {label}: {describe_validation_error(exc)}") from exc
        except CatalogError as exc:
            raise CatalogError(f"{source}: {label}: {exc}") from exc
        if task.id in seen:
            raise CatalogError(f"{source}: {label}: id: duplicate task id")
        seen.add(task.id)
        tasks.append(task)
    return Catalog(name=document.name or source, tasks=tuple(tasks))


def builtin_catalog_text(name: str) -> str:
    if name not in BUILTIN_CATALOGS:
        raise CatalogError(f"unknown built-in catalog {name!r}; choose one of {BUILTIN_CATALOGS}")
    return resources.files("protocol.catalogs").joinpath(f"{name}.toml").read_text("utf-8")


def resolve_catalog(reference: str) -> Catalog:
    """``dev`` / ``production`` name a shipped catalog; anything else is a path to a TOML file."""
    if reference in BUILTIN_CATALOGS:
        return load_catalog(builtin_catalog_text(reference), source=f"{reference}.toml")
    try:
        with open(reference, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise CatalogError(f"cannot read catalog {reference!r}: {exc.strerror}") from exc
    return load_catalog(text, source=reference)
