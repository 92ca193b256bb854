"""The benchmark's pipeline mode keeps working: a small corpus through the collector's per-event work gives its figures."""

from __future__ import annotations

from typing import Iterator

import pytest
import sentry_sdk

from tests.bench import pipeline
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


def test_no_sdk_client_is_left_behind() -> None:
    assert not sentry_sdk.get_client().is_active()
