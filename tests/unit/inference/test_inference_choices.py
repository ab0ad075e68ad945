"""The n-copy planning shared by the forward and vLLM engines (vLLM refuses greedy n >= 2)."""

from __future__ import annotations

import pytest

from inference.base import ChoiceEnd, TextRequest, TokenEvent, TopToken
from inference.choices import copy_events, plan_choices


@pytest.mark.parametrize(
    ("temperature", "n", "run_n", "copies"),
    [(0.0, 3, 1, 3), (0.0, 1, 1, 1), (0.7, 3, 3, 1), (1.0, 1, 1, 1)],
)
def test_greedy_n_runs_one_choice(temperature, n, run_n, copies):
    request = TextRequest(prompt="hi", max_tokens=4, temperature=temperature, n=n, seed=5)
    run, got = plan_choices(request)
    assert (run.n, got) == (run_n, copies)
    assert (run.prompt, run.max_tokens, run.temperature, run.seed) == ("hi", 4, temperature, 5)
    if copies == 1:
        assert run is request


def test_copies_keep_everything_but_the_index():
    top = (TopToken(token_id=7, token="a", logprob=-0.1),)
    events = [
        TokenEvent(choice=0, token_id=7, token="a", text="a", logprob=-0.1, top=top),
        ChoiceEnd(choice=0, finish_reason="length", text=""),
    ]
    copied = copy_events(events, 3)
    assert [e.choice for e in copied] == [0, 1, 2, 0, 1, 2]
    for original, group in ((events[0], copied[:3]), (events[1], copied[3:])):
        for index, copy in enumerate(group):
            assert type(copy) is type(original)
            assert copy == type(original)(**{**_fields(original), "choice": index})
    assert copy_events(events, 1) == events


def _fields(event):
    return {name: getattr(event, name) for name in event.__struct_fields__}
