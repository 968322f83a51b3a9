"""The payments benchmark's command line: which checkouts it measures."""

from __future__ import annotations

from pathlib import Path

import pytest

from loadtests.bench.payments_bench import parse_args
from loadtests.bench.processes import REPO_ROOT


def test_by_default_it_measures_this_checkout_alone() -> None:
    settings = parse_args([])

    assert (settings.checkout, settings.compare_with) == (REPO_ROOT, None)


def test_two_other_checkouts_can_be_compared_with_this_benchmark(tmp_path: Path) -> None:
    before, after = tmp_path / "before", tmp_path / "after"
    for checkout in (before, after):
        (checkout / "nova").mkdir(parents=True)
        (checkout / "nova" / "__main__.py").touch()

    settings = parse_args(["--checkout", str(after), "--compare-with", str(before)])

    assert (settings.checkout, settings.compare_with) == (after, before)


def test_a_folder_that_is_not_a_checkout_is_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        parse_args(["--checkout", str(tmp_path)])

    assert "is not a checkout of the suite" in capsys.readouterr().err
