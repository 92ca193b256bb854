"""Code that fails as an application's would, for the real SDK to report with source lines and locals."""

from __future__ import annotations

import json

import sentry_sdk


def load_cart(raw: str) -> dict:
    cart_id = 7
    note = "<script>alert('cart')</script>"
    return {"id": cart_id, "note": note, **json.loads(raw)}  # raises JSONDecodeError inside the standard library


def checkout(raw: str) -> None:
    try:
        load_cart(raw)
    except ValueError as exc:
        raise RuntimeError(
            "checkout failed"
        ) from exc


def report_checkout() -> None:
    sentry_sdk.add_breadcrumb(category="cart", message="cart opened <b>", level="info", data={"items": 3})
    sentry_sdk.set_tag("shop", "north")
    sentry_sdk.set_user({"id": "42", "email": "ada@example.com"})
    sentry_sdk.set_context("browser", {"name": "Firefox", "version": "120.0"})
    try:
        checkout("{broken")
    except RuntimeError:
        sentry_sdk.capture_exception()
