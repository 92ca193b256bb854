"""The Sentry collector: from an SDK's request to a committed event (routes, parsers, grouping, writer)."""
