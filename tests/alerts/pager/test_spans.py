"""Reading a service's trace file from its end: whole lines, newest first, bounded."""

from __future__ import annotations

from pathlib import Path

import pytest

from alerts.pager import spans


def test_lines_are_read_newest_first_and_whole_across_block_boundaries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(spans, "_BLOCK", 7)
    lines = [f'{{"batch": {i}, "padding": "{"x" * i}"}}' for i in range(12)]
    (tmp_path / "payments.jsonl").write_text("\n".join(lines) + "\n")

    read = [line.decode() for line in spans._lines_backwards(tmp_path / "payments.jsonl", 1 << 20)]

    assert read == lines[::-1]


def test_no_more_than_max_bytes_are_read_from_the_end(tmp_path: Path) -> None:
    lines = [f'{{"batch": {i}}}' for i in range(100)]
    (tmp_path / "payments.jsonl").write_text("\n".join(lines) + "\n")

    read = list(spans._lines_backwards(tmp_path / "payments.jsonl", 60))

    assert 0 < len(read) < 10
    assert read[0] == b'{"batch": 99}'


def test_a_missing_trace_file_is_no_report(tmp_path: Path) -> None:
    assert spans.span_report(tmp_path, "payments", 0.0, 1e12) is None


def test_a_service_name_cannot_reach_outside_the_traces_folder(tmp_path: Path) -> None:
    (tmp_path / "secret.jsonl").write_text("{}\n")

    assert spans.span_report(tmp_path / "traces", "../secret", 0.0, 1e12) is None
