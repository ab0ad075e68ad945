"""Check jobs: building them from what the gateway has, the wire format, and bad jobs scored 0
with a reason (never an exception) by the dispatcher."""

from __future__ import annotations

import base64
import io

import msgspec
import pytest
from PIL import Image

from checker.dispatch import run_check
from core.checks import (
    MAX_TOKENS_PER_CHOICE,
    CheckJob,
    EmbeddingResponse,
    ImageResponse,
    JobDecodeError,
    JobTimings,
    MissingResponse,
    TextChoice,
    TextResponse,
    decode_envelope,
    decode_job,
    decode_response,
    encode_job,
    make_job,
)
from protocol.miner import (
    MinerChatRequest,
    MinerEmbedding,
    MinerEmbeddingList,
    MinerImage,
    MinerImagesResponse,
)
from protocol.records import GeneratedChoice, TextOutput
from tests.support.checker_fakes import RAW_LOGPROBS, FakeReference

TIMINGS = JobTimings(started=1_700_000_000.0, total_s=1.5, ttft_s=0.2, attempts=1)
CHAT_BODY = {
    "model": "sn19-tiny-chat",
    "messages": [{"role": "user", "content": "hi"}],
    "max_tokens": 4,
    "temperature": 1.0,
    "seed": 3,
}


def chat_job(**overrides) -> CheckJob:
    request = msgspec.convert(CHAT_BODY, MinerChatRequest)
    output = TextOutput(
        choices=[
            GeneratedChoice(
                index=0,
                token_ids=[0, 1, 0, 0],
                logprobs=[float(RAW_LOGPROBS[i]) for i in (0, 1, 0, 0)],
                text="abaa",
                finish_reason="length",
            )
        ]
    )
    fields = {
        "task": "sn19-tiny-chat",
        "kind": "chat",
        "organic": True,
        "request": request,
        "result": output,
        "hotkey": "5Hot",
        "uid": 3,
        "timings": TIMINGS,
        **overrides,
    }
    return make_job(**fields)


def test_jobs_round_trip_and_the_envelope_defers_the_response() -> None:
    job = chat_job(receipt="ab" * 64, request_id="req_1")
    data = encode_job(job)
    assert decode_job(data) == job
    envelope = decode_envelope(data)
    assert (envelope.job_id, envelope.task, envelope.miner.uid) == (job.job_id, job.task, 3)
    response = decode_response(envelope)
    assert isinstance(response, TextResponse) and response.choices[0].token_ids == [0, 1, 0, 0]
    assert msgspec.json.decode(envelope.request)["seed"] == 3


def test_make_job_decodes_images_and_orders_nothing_itself() -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, format="PNG")
    images = MinerImagesResponse(
        created=1,
        data=[
            MinerImage(b64_json=base64.b64encode(buffer.getvalue()).decode()),
            MinerImage(b64_json="!!not base64!!"),
        ],
    )
    job = make_job(
        task="t",
        kind="image",
        organic=False,
        request=b"{}",
        result=images,
        hotkey="h",
        uid=1,
        timings=TIMINGS,
    )
    assert isinstance(job.response, ImageResponse)
    assert job.response.images == [buffer.getvalue(), b""]
    vectors = MinerEmbeddingList(
        model="m",
        data=[MinerEmbedding(index=1, embedding=[1.0]), MinerEmbedding(index=0, embedding=[0.0])],
    )
    job = make_job(
        task="t",
        kind="embedding",
        organic=False,
        request=b"{}",
        result=vectors,
        hotkey="h",
        uid=1,
        timings=TIMINGS,
    )
    assert job.response == EmbeddingResponse(indexes=[1, 0], vectors=[[1.0], [0.0]])
    missing = make_job(
        task="t",
        kind="chat",
        organic=False,
        request=b"{}",
        result=None,
        hotkey="h",
        uid=1,
        timings=TIMINGS,
    )
    assert isinstance(missing.response, MissingResponse)


def test_over_limit_responses_fail_to_decode_but_the_envelope_does() -> None:
    huge = TextResponse(choices=[TextChoice(index=0, token_ids=[1] * (MAX_TOKENS_PER_CHOICE + 1))])
    data = encode_job(msgspec.structs.replace(chat_job(), response=huge))
    envelope = decode_envelope(data)
    with pytest.raises(JobDecodeError):
        decode_response(envelope)
    with pytest.raises(JobDecodeError):
        decode_envelope(b"\x93garbage")


async def dispatch(job: CheckJob, dev_catalog, engine=None):
    envelope = decode_envelope(encode_job(job))
    return await run_check(envelope, dev_catalog.get(envelope.task), engine or FakeReference())


async def test_a_good_job_is_checked(dev_catalog) -> None:
    outcome = await dispatch(chat_job(), dev_catalog)
    assert outcome.code == "" and outcome.quality == 1.0 and outcome.work == 4


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"request": b'{"model": "sn19-tiny-chat"}'}, "bad_request"),  # missing fields
        ({"request": b"not json"}, "bad_request"),
        ({"request": msgspec.json.encode({**CHAT_BODY, "n": 99})}, "bad_request"),
        ({"response": MissingResponse(reason="the miner delivered nothing")}, "missing_response"),
        ({"response": ImageResponse(images=[b"x"])}, "bad_job"),
        ({"kind": "embedding"}, "bad_job"),
        (
            {
                "response": TextResponse(
                    choices=[
                        TextChoice(
                            index=0,
                            token_ids=[0, 9999, 0, 0],
                            logprobs=[-1.0] * 4,
                            text="aa",
                            finish_reason="length",
                        )
                    ]
                )
            },
            "token_out_of_vocab",
        ),
        (
            {
                "response": TextResponse(
                    choices=[TextChoice(index=0, token_ids=[1] * (MAX_TOKENS_PER_CHOICE + 1))]
                )
            },
            "bad_job",
        ),
    ],
)
async def test_bad_jobs_score_zero_with_a_reason(dev_catalog, change, code) -> None:
    outcome = await dispatch(msgspec.structs.replace(chat_job(), **change), dev_catalog)
    assert outcome.code == code and outcome.quality == 0.0 and outcome.reason


async def test_invalid_image_bytes_score_zero(dev_catalog) -> None:
    body = {"prompt": "a cat", "model": "sn19-tiny-diffusion", "n": 1, "size": "64x64", "seed": 1}
    job = make_job(
        task="sn19-tiny-diffusion",
        kind="image",
        organic=True,
        request=msgspec.json.encode(body),
        result=ImageResponse(images=[b"\x89PNG\r\n garbage"]),
        hotkey="h",
        uid=1,
        timings=TIMINGS,
    )

    class NeverCalled:
        async def generate(self, request):
            raise AssertionError("no regeneration for undecodable bytes")

    outcome = await dispatch(job, dev_catalog, NeverCalled())
    assert outcome.code == "image_undecodable" and outcome.quality == 0.0
    unseeded = msgspec.structs.replace(job, request=msgspec.json.encode({**body, "seed": None}))
    assert (await dispatch(unseeded, dev_catalog, NeverCalled())).code == "bad_request"
