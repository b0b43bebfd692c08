"""The stored public results are parsed once per content of the file, and read again when it changes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from grader import public


def test_the_stored_results_are_parsed_once_and_again_when_the_file_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parsed: list[bytes] = []
    original = json.loads

    def counting(data: bytes | str, **kwargs: object) -> object:
        parsed.append(data if isinstance(data, bytes) else data.encode())
        return original(data, **kwargs)

    monkeypatch.setattr(json, "loads", counting)
    monkeypatch.setattr(public, "EXPECTED", tmp_path / "expected.json")
    public._parse.cache_clear()
    first = {"cases": [{"item": "a.f"}], "items": [{"id": "a.f", "points": 1, "cases_of": "a.f"}]}
    public.EXPECTED.write_text(json.dumps(first))
    assert public.load() == first["cases"]
    assert set(public.stored_items()) == {"a.f"}
    assert public.stored_mistakes() == {"a.f": {}}
    assert len(parsed) == 1

    second = {**first, "cases": [{"item": "a.g"}]}  # the same size, written within the same clock tick
    public.EXPECTED.write_text(json.dumps(second))
    assert public.load() == second["cases"]
    assert len(parsed) == 2
    public._parse.cache_clear()
