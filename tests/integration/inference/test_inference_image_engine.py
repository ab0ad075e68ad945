"""DiffusersImageEngine on the tiny Stable Diffusion pipeline."""

from __future__ import annotations

import hashlib
import io

import pytest
from PIL import Image

from inference.base import EngineInputError, ImageRequest
from inference.diffusers_image import DiffusersImageEngine
from inference.tiny import save_tiny_sd

STEPS = 4


def picture(**fields) -> ImageRequest:
    fields.setdefault("prompt", "a red cat on a mat")
    fields.setdefault("width", 64)
    fields.setdefault("height", 64)
    fields.setdefault("steps", STEPS)
    fields.setdefault("seed", 42)
    return ImageRequest(**fields)


def decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def png(color: tuple[int, int, int], size: tuple[int, int] = (64, 64), mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, color if mode == "RGB" else color[0]).save(buffer, format="PNG")
    return buffer.getvalue()


async def test_same_seed_same_png_other_seed_differs(image_engine):
    first = await image_engine.generate(picture())
    second = await image_engine.generate(picture())
    assert first == second
    other = await image_engine.generate(picture(seed=43))
    assert other != first
    image = decode(first[0])
    assert image.format == "PNG" and image.size == (64, 64) and image.mode == "RGB"


async def test_image_i_uses_seed_plus_i(image_engine):
    both = await image_engine.generate(picture(seed=7, n=2))
    assert len(both) == 2 and both[0] != both[1]
    assert both[1] == (await image_engine.generate(picture(seed=8)))[0]


async def test_requested_size_and_formats(image_engine):
    wide = decode((await image_engine.generate(picture(width=96, height=64)))[0])
    assert wide.size == (96, 64)
    jpeg = decode((await image_engine.generate(picture(output_format="jpeg")))[0])
    assert jpeg.format == "JPEG" and jpeg.size == (64, 64)
    webp = decode((await image_engine.generate(picture(output_format="webp")))[0])
    assert webp.format == "WEBP" and webp.size == (64, 64)


async def test_image_to_image(image_engine):
    request = picture(init_image=png((200, 30, 30), size=(80, 80)), strength=0.5, steps=6)
    first = await image_engine.generate(request)
    assert first == await image_engine.generate(request)
    image = decode(first[0])
    assert image.format == "PNG" and image.size == (64, 64)
    assert first != await image_engine.generate(picture(steps=6))


async def test_inpainting(image_engine):
    assert image_engine.supports_inpainting
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (16, 16, 48, 48))
    buffer = io.BytesIO()
    mask.save(buffer, format="PNG")
    request = picture(
        init_image=png((30, 30, 200)), mask_image=buffer.getvalue(), strength=1.0, steps=4
    )
    first = await image_engine.generate(request)
    assert first == await image_engine.generate(request)
    image = decode(first[0])
    assert image.format == "PNG" and image.size == (64, 64)


async def test_bad_requests_are_input_errors(image_engine):
    with pytest.raises(EngineInputError, match="multiple of 8"):
        await image_engine.generate(picture(width=60))
    with pytest.raises(EngineInputError, match="not a readable"):
        await image_engine.generate(picture(init_image=b"not an image"))
    with pytest.raises(EngineInputError, match="needs an image"):
        await image_engine.generate(picture(mask_image=png((255, 0, 0))))
    with pytest.raises(EngineInputError, match="steps"):
        await image_engine.generate(picture(init_image=png((1, 2, 3)), strength=0.1, steps=4))


async def test_saved_pipeline_directory_gives_the_same_image(image_engine, tmp_path):
    directory = save_tiny_sd(tmp_path / "tiny-sd")
    engine = DiffusersImageEngine(str(directory), scheduler="ddim")
    await engine.start()
    try:
        assert engine.supports_inpainting
        reloaded = await engine.generate(picture())
    finally:
        await engine.close()
    expected = await image_engine.generate(picture())
    assert hashlib.sha256(reloaded[0]).digest() == hashlib.sha256(expected[0]).digest()
