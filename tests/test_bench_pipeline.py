"""The benchmark's in-process modes keep working: the per-event work and the whole request path give their figures for a small corpus."""

from __future__ import annotations

from typing import Iterator

import pytest
import sentry_sdk

from tests.bench import inprocess, pipeline
from tests.bench.options import parse_args


@pytest.fixture
def sdk_left_as_found() -> Iterator[None]:
    """The corpus is captured with a global sentry-sdk client (closed after): other tests expect none."""
    yield
    sentry_sdk.get_global_scope().set_client(None)
    sentry_sdk.get_isolation_scope().clear()
    sentry_sdk.get_current_scope().clear()


@pytest.mark.usefixtures("sdk_left_as_found")
def test_the_pipeline_mode_measures_the_corpus_and_names_its_top_functions() -> None:
    line = pipeline.run(events=30, rounds=1)
    assert (line["mode"], line["events"], line["rounds"]) == ("pipeline", 30, 1)
    assert 0 < line["cpu_us_per_event_best"] <= line["cpu_us_per_event_median"]
    assert len(line["top_functions"]) == pipeline.TOP_FUNCTIONS
    assert {"function", "calls_per_event", "own_us_per_event", "cumulative_us_per_event"} == set(line["top_functions"][0])


def test_the_pipeline_mode_is_an_option() -> None:
    arguments = parse_args(["--mode", "pipeline", "--events", "500", "--rounds", "3"])
    assert (arguments.mode, arguments.events, arguments.rounds) == ("pipeline", 500, 3)


@pytest.mark.usefixtures("sdk_left_as_found")
def test_the_inprocess_mode_answers_every_request_of_the_corpus() -> None:
    line = inprocess.run(requests=30, rounds=1, connections=4)
    assert (line["mode"], line["requests"], line["rounds"], line["connections"]) == ("inprocess", 30, 1, 4)
    assert line["statuses"] == {"200": 60}  # the warm-up round's and the measured round's
    assert 0 < line["cpu_us_per_request_best"] <= line["cpu_us_per_request_median"]


def test_the_inprocess_mode_is_an_option() -> None:
    arguments = parse_args(["--mode", "inprocess", "--events", "500", "--rounds", "3", "--connections", "8"])
    assert (arguments.mode, arguments.events, arguments.rounds, arguments.connections) == ("inprocess", 500, 3, 8)


def test_no_sdk_client_is_left_behind() -> None:
    assert not sentry_sdk.get_client().is_active()
