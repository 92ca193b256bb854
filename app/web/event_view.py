"""A stored event payload as the error page shows it (a stand-in: the whole payload, indented)."""

from __future__ import annotations

import json
from typing import Any


def build(payload: Any) -> dict[str, Any]:
    return {"json": json.dumps(payload, indent=2, ensure_ascii=False, default=str)}
