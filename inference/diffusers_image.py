"""Images with diffusers: text-to-image, image-to-image and inpainting from one set of weights.

``builtin:tiny-sd`` is built in memory (``inference.tiny``); anything else is a local pipeline
directory or a repo already in the Hugging Face cache, loaded with ``AutoPipelineForText2Image``
(Stable Diffusion, SDXL, FLUX, ...). The image-to-image and inpainting pipelines are derived
from it with ``from_pipe`` (shared weights, no extra memory); a model whose family has no
inpainting pipeline has ``supports_inpainting = False``.

Image ``i`` of a request is drawn with a ``torch.Generator`` seeded with ``seed + i`` (mod
2**64), one pipeline call per image, so image ``i`` equals an ``n=1`` request with that seed and
is bit-identical for the same seed, machine and thread count. Work runs in one single-thread
executor per engine.
"""

from __future__ import annotations

import inspect
import io
from pathlib import Path
from typing import Any, Literal

from inference.base import EngineError, EngineInputError, ImageRequest
from inference.thread import EngineThread
from protocol.catalog import EngineSpec, Task

MAX_SIDE = 2048
_SCHEDULERS = {
    "ddim": ("DDIMScheduler", {}),
    "euler": ("EulerDiscreteScheduler", {}),
    "euler-trailing": ("EulerDiscreteScheduler", {"timestep_spacing": "trailing"}),
    "euler-a": ("EulerAncestralDiscreteScheduler", {}),
    "dpm++": ("DPMSolverMultistepScheduler", {}),
}


class DiffusersImageEngine:
    kind: Literal["image"] = "image"

    def __init__(
        self,
        model: str,
        *,
        revision: str | None = None,
        dtype: str = "auto",
        device: str | None = None,
        threads: int | None = None,
        base: str | None = None,
        unet_file: str | None = None,
        scheduler: str | None = None,
        max_side: int = MAX_SIDE,
    ) -> None:
        if scheduler is not None and scheduler not in _SCHEDULERS:
            raise EngineError(
                f"unknown scheduler {scheduler!r}; choose one of {sorted(_SCHEDULERS)}"
            )
        self.model_ref = model
        self.revision = revision
        self.dtype = dtype
        self.device = device or "cpu"
        self.threads = threads
        self.base = base
        self.unet_file = unet_file
        self.scheduler = scheduler
        self.max_side = max_side
        self.supports_inpainting = False
        self._thread = EngineThread("image-engine")
        self._text2img: Any = None
        self._img2img: Any = None
        self._inpaint: Any = None

    @classmethod
    def from_spec(
        cls, spec: EngineSpec, task: Task, *, device: str | None = None
    ) -> DiffusersImageEngine:
        """Options: ``threads``, ``device``, ``scheduler`` (ddim, euler, euler-trailing, euler-a,
        dpm++), ``base`` + ``unet_file`` (a UNet checkpoint file of ``model`` swapped into the
        ``base`` pipeline, as SDXL-Lightning ships), ``max_side`` (pixels, default 2048)."""
        del task
        options = spec.options

        def text(name: str) -> str | None:
            value = options.get(name)
            return None if value is None else str(value)

        threads = options.get("threads")
        return cls(
            spec.model,
            revision=spec.revision,
            dtype=spec.dtype,
            device=device or text("device"),
            threads=int(threads) if threads is not None else None,
            base=text("base"),
            unet_file=text("unet_file"),
            scheduler=text("scheduler"),
            max_side=int(options.get("max_side", MAX_SIDE)),
        )

    async def start(self) -> None:
        if self._text2img is not None:
            return
        await self._thread.start(self._load)

    async def close(self) -> None:
        await self._thread.close()
        self._text2img = self._img2img = self._inpaint = None

    def _load(self) -> None:
        import torch
        from diffusers import AutoPipelineForImage2Image, AutoPipelineForInpainting

        if self.threads:
            torch.set_num_threads(self.threads)
        if self.model_ref == "builtin:tiny-sd":
            from inference.tiny import build_tiny_sd

            pipeline = build_tiny_sd()
        else:
            pipeline = self._load_pretrained()
        if self.scheduler is not None:
            import diffusers

            class_name, overrides = _SCHEDULERS[self.scheduler]
            scheduler_class = getattr(diffusers, class_name)
            pipeline.scheduler = scheduler_class.from_config(pipeline.scheduler.config, **overrides)
        pipeline = pipeline.to(self.device)
        pipeline.set_progress_bar_config(disable=True)
        self._img2img = _derive(AutoPipelineForImage2Image, pipeline)
        self._inpaint = _derive(AutoPipelineForInpainting, pipeline)
        self.supports_inpainting = self._inpaint is not None
        self._text2img = pipeline

    def _torch_dtype(self) -> Any:
        import torch

        if self.dtype == "auto":
            return torch.float32 if self.device == "cpu" else torch.float16
        return getattr(torch, self.dtype)

    def _load_pretrained(self) -> Any:
        from diffusers import AutoPipelineForText2Image

        dtype = self._torch_dtype()
        kwargs: dict[str, Any] = {"torch_dtype": dtype, "local_files_only": True}
        source = self.model_ref
        try:
            if self.unet_file is not None:
                kwargs["unet"] = self._load_unet(dtype)
                source = self.base or self.model_ref
            elif self.revision is not None:
                kwargs["revision"] = self.revision
            local = Path(source).expanduser()
            if local.is_dir():
                source = str(local)
            if _has_component(source, "safety_checker"):
                kwargs.update(safety_checker=None, requires_safety_checker=False)
            return AutoPipelineForText2Image.from_pretrained(source, **kwargs)
        except (OSError, ValueError) as exc:
            raise EngineError(
                f"image model {source!r} is neither a local pipeline directory nor in the local "
                f"Hugging Face cache (engines never download; fetch it first): {exc}"
            ) from exc

    def _load_unet(self, dtype: Any) -> Any:
        """SDXL-Lightning style: the base pipeline's UNet config with ``unet_file``'s weights."""
        from diffusers import UNet2DConditionModel
        from huggingface_hub import hf_hub_download
        from safetensors.torch import load_file

        if self.base is None or self.unet_file is None:
            raise EngineError("option unet_file needs option base (the pipeline it plugs into)")
        unet_file = self.unet_file
        base = Path(self.base).expanduser()
        config = UNet2DConditionModel.load_config(
            str(base) if base.is_dir() else self.base, subfolder="unet", local_files_only=True
        )
        unet = UNet2DConditionModel.from_config(config).to(dtype)
        local = Path(self.model_ref).expanduser()
        weights = (
            local / unet_file
            if local.is_dir()
            else Path(
                hf_hub_download(
                    self.model_ref,
                    unet_file,
                    revision=self.revision,
                    local_files_only=True,
                )
            )
        )
        unet.load_state_dict(load_file(str(weights)))
        return unet

    # -- generation -----------------------------------------------------------------------------

    def _validate(self, request: ImageRequest) -> None:
        if self._text2img is None or not self._thread.started:
            raise EngineError("the engine is not started")
        for name, side in (("width", request.width), ("height", request.height)):
            if side < 8 or side % 8 or side > self.max_side:
                raise EngineInputError(
                    f"{name} must be a multiple of 8 between 8 and {self.max_side}, got {side}"
                )
        if request.steps < 1 or request.n < 1:
            raise EngineInputError("steps and n must be at least 1")
        if request.mask_image is not None:
            if request.init_image is None:
                raise EngineInputError("inpainting needs an image as well as a mask")
            if not self.supports_inpainting:
                raise EngineInputError(f"model {self.model_ref!r} does not support inpainting")
        if request.init_image is not None:
            if self._img2img is None:
                raise EngineInputError(f"model {self.model_ref!r} does not support image edits")
            if not 0.0 < request.strength <= 1.0:
                raise EngineInputError("strength must be within (0, 1]")
            if int(request.steps * request.strength) < 1:
                raise EngineInputError("steps × strength must be at least 1")

    async def generate(self, request: ImageRequest) -> list[bytes]:
        self._validate(request)
        return await self._thread.run(self._generate_sync, request)

    def _generate_sync(self, request: ImageRequest) -> list[bytes]:
        import torch

        size = (request.width, request.height)
        common: dict[str, Any] = {
            "prompt": request.prompt,
            "negative_prompt": request.negative_prompt or None,
            "num_inference_steps": request.steps,
            "guidance_scale": request.guidance_scale,
            "width": request.width,
            "height": request.height,
            "output_type": "pil",
        }
        if request.mask_image is not None:
            pipeline = self._inpaint
            common["image"] = _decode_image(request.init_image, size, "RGB", "image")
            common["mask_image"] = _decode_image(request.mask_image, size, "L", "mask")
            common["strength"] = request.strength
        elif request.init_image is not None:
            pipeline = self._img2img
            common["image"] = _decode_image(request.init_image, size, "RGB", "image")
            common["strength"] = request.strength
        else:
            pipeline = self._text2img
        kwargs = _accepted(pipeline, common)
        images: list[bytes] = []
        for index in range(request.n):
            generator = torch.Generator(device=self.device)
            generator.manual_seed((request.seed + index) % (1 << 64))
            with torch.inference_mode():
                image = pipeline(generator=generator, **kwargs).images[0]
            images.append(encode_image(image, size, request.output_format))
        return images


def _derive(auto_class: Any, pipeline: Any) -> Any:
    try:
        derived = auto_class.from_pipe(pipeline)
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    derived.set_progress_bar_config(disable=True)
    return derived


def _has_component(source: str, name: str) -> bool:
    """Whether a pipeline's ``model_index.json`` lists a component (local dirs only; cached
    repos are answered by diffusers itself)."""
    index = Path(source) / "model_index.json"
    return not index.is_file() or f'"{name}"' in index.read_text("utf-8")


def _accepted(pipeline: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
    parameters = inspect.signature(pipeline.__call__).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return {k: v for k, v in kwargs.items() if v is not None}
    return {k: v for k, v in kwargs.items() if k in parameters and v is not None}


def _decode_image(data: bytes | None, size: tuple[int, int], mode: str, what: str) -> Any:
    from PIL import Image, UnidentifiedImageError

    if data is None:
        raise EngineInputError(f"the {what} is missing")
    try:
        with Image.open(io.BytesIO(data)) as opened:
            if opened.width * opened.height > 64 * 1024 * 1024:
                raise EngineInputError(f"the {what} is too large")
            image = opened.convert(mode)
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise EngineInputError(f"the {what} is not a readable PNG, JPEG or WebP image") from exc
    if image.size != size:
        image = image.resize(size, Image.Resampling.LANCZOS)
    return image


def encode_image(image: Any, size: tuple[int, int], output_format: str) -> bytes:
    """PNG (lossless, deterministic), JPEG or WebP (quality 95) bytes of a PIL image, resized to
    ``size`` if the pipeline rounded it."""
    from PIL import Image

    if image.size != size:
        image = image.resize(size, Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    if output_format == "png":
        image.save(buffer, format="PNG")
    elif output_format == "jpeg":
        image.convert("RGB").save(buffer, format="JPEG", quality=95)
    elif output_format == "webp":
        image.save(buffer, format="WEBP", quality=95)
    else:
        raise EngineInputError(f"unsupported output format {output_format!r}")
    return buffer.getvalue()
