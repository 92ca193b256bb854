"""The errors list's query parsed from its parameters and a Sentry-style search (app/search_query.py), no I/O."""

from __future__ import annotations

import pytest

from app.search_query import MAX_TEXT_TERMS, ErrorQuery, parse_query


def test_defaults_are_unresolved_by_last_seen() -> None:
    assert parse_query(None) == ErrorQuery(status="unresolved", text=(), environment=None, release=None,
                                           level=None, sort="last_seen")


@pytest.mark.parametrize("status, expected", [("unresolved", "unresolved"), ("resolved", "resolved"),
                                              ("ignored", "ignored"), ("all", None)])
def test_status_parameter(status, expected) -> None:
    assert parse_query(None, status=status).status == expected


@pytest.mark.parametrize("sort", ["last_seen", "first_seen", "frequency"])
def test_sort_parameter(sort) -> None:
    assert parse_query(None, sort=sort).sort == sort


@pytest.mark.parametrize("kwargs, message", [
    ({"status": "bogus"}, "status does not have a valid value"),
    ({"status": "Resolved"}, "status does not have a valid value"),
    ({"sort": "bogus"}, "sort does not have a valid value"),
    ({"search": "is:bogus"}, "search term is: must be one of unresolved, resolved, ignored, all"),
    ({"search": "level:loud"}, "search term level: must be one of fatal, error, warning, info, debug"),
    ({"search": "environment:"}, "search term environment: needs a value"),
    ({"search": 'release:""'}, "search term release: needs a value"),
    ({"search": "x " * (MAX_TEXT_TERMS + 1)}, f"search has more than {MAX_TEXT_TERMS} words to match"),
    ({"search": "x" * 1001}, "search is longer than 1000 characters"),
])
def test_bad_values_raise_value_error_with_the_message(kwargs, message) -> None:
    search = kwargs.pop("search", None)
    with pytest.raises(ValueError) as raised:
        parse_query(search, **kwargs)
    assert str(raised.value) == message


def test_terms_mixed_with_free_text() -> None:
    query = parse_query('ValueError is:resolved environment:production release:"build 7" level:WARNING cart')
    assert query == ErrorQuery(status="resolved", text=("ValueError", "cart"), environment="production",
                               release="build 7", level="warning", sort="last_seen")


def test_quoted_free_text_is_one_phrase_and_an_unclosed_quote_runs_to_the_end() -> None:
    assert parse_query('"connection refused" db').text == ("connection refused", "db")
    assert parse_query('db "cart is').text == ("db", "cart is")


def test_unknown_keys_are_free_text() -> None:
    assert parse_query("http://host:80/x browser:firefox").text == ("http://host:80/x", "browser:firefox")


def test_term_keys_are_case_insensitive_and_values_of_is_too() -> None:
    query = parse_query("IS:Ignored Environment:Prod")
    assert (query.status, query.environment) == ("ignored", "Prod")


def test_terms_override_parameters() -> None:
    query = parse_query("is:all environment:staging", status="resolved", environment="production")
    assert (query.status, query.environment) == (None, "staging")
    assert parse_query("is:ignored", status="all").status == "ignored"
    assert parse_query("cart", status="resolved", environment="qa") == ErrorQuery(
        status="resolved", text=("cart",), environment="qa")


def test_blank_search_and_environment_mean_not_given() -> None:
    assert parse_query("   ", environment="") == parse_query(None)
