"""`/v1/images/edits`: the multipart form the OpenAI SDK sends, validated, and turned into the
JSON ``MinerImageEditRequest`` miners take (base64 ``image`` / ``mask``, so the signature covers
the whole body).

The form holds one ``image`` file (also accepted as ``image[]``), an optional ``mask`` file, and
text fields (``prompt``, ``model``, ``n``, ``size``, ``response_format`` and the SN19
extensions). Uploads must decode as PNG/JPEG/WebP; the mask must have the image's size, and only
tasks whose engine can inpaint (``image.inpainting``) accept one.
"""

from __future__ import annotations

import asyncio
import base64
from typing import Any

from litestar import Request
from litestar.datastructures import UploadFile

from core.errors import InvalidRequest, PayloadTooLarge
from gateway.images.decode import ImageInfo, inspect_image
from gateway.validation import convert
from protocol.openai.images import ImageEditFields

FILE_FIELDS = ("image", "image[]", "mask")


class EditUpload:
    __slots__ = ("fields", "image", "image_info", "mask")

    def __init__(
        self, fields: ImageEditFields, image: bytes, image_info: ImageInfo, mask: bytes | None
    ) -> None:
        self.fields = fields
        self.image = image
        self.image_info = image_info
        self.mask = mask

    def image_b64(self) -> str:
        return base64.b64encode(self.image).decode("ascii")

    def mask_b64(self) -> str | None:
        return base64.b64encode(self.mask).decode("ascii") if self.mask is not None else None


async def _file_bytes(value: Any, param: str, limit: int) -> bytes:
    if not isinstance(value, UploadFile):
        raise InvalidRequest(f"'{param}' must be a file upload.", param=param)
    data = await value.read()
    if len(data) > limit:
        raise PayloadTooLarge(f"'{param}' is larger than {limit} bytes.", param=param)
    if not data:
        raise InvalidRequest(f"'{param}' is empty.", param=param)
    return data


async def _decoded(data: bytes, param: str) -> ImageInfo:
    try:
        return await asyncio.to_thread(inspect_image, data)
    except ValueError as exc:
        raise InvalidRequest(
            f"'{param}' is not a valid PNG, JPEG or WebP image ({exc}).", param=param
        ) from None


async def read_edit_form(request: Request[Any, Any, Any], max_upload: int) -> EditUpload:
    content_type, _ = request.content_type
    if content_type != "multipart/form-data":
        raise InvalidRequest(
            "Send image edits as multipart/form-data with an 'image' file (as the OpenAI SDK "
            "does).",
            param="image",
        )
    form = await request.form()
    images = [*form.getall("image", []), *form.getall("image[]", [])]
    if len(images) != 1:
        raise InvalidRequest("Send exactly one 'image' file.", param="image")
    masks = form.getall("mask", [])
    if len(masks) > 1:
        raise InvalidRequest("Send at most one 'mask' file.", param="mask")
    fields: dict[str, Any] = {}
    for key, value in form.multi_items():
        if key in FILE_FIELDS:
            continue
        if isinstance(value, UploadFile):
            raise InvalidRequest(f"'{key}' must be a text field.", param=key)
        if key in fields:
            raise InvalidRequest(f"'{key}' is given more than once.", param=key)
        fields[key] = value
    parsed = convert(fields, ImageEditFields)
    image = await _file_bytes(images[0], "image", max_upload)
    mask = await _file_bytes(masks[0], "mask", max_upload) if masks else None
    info = await _decoded(image, "image")
    if mask is not None:
        mask_info = await _decoded(mask, "mask")
        if (mask_info.width, mask_info.height) != (info.width, info.height):
            raise InvalidRequest(
                f"The mask is {mask_info.width}x{mask_info.height}; it must match the image "
                f"({info.width}x{info.height}).",
                param="mask",
            )
    return EditUpload(parsed, image, info, mask)
