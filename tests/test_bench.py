"""Smoke test of the benchmark harness (bench/run.py): one cheap section, tables written."""
import importlib.util
import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("scipy")

RUN = Path(__file__).resolve().parent.parent / "bench" / "run.py"


def test_bench_quick_sections_write_tables(tmp_path):
    spec = importlib.util.spec_from_file_location("gdla_bench_run", RUN)
    bench = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = bench  # dataclasses look their module up
    try:
        spec.loader.exec_module(bench)
    finally:
        sys.modules.pop(spec.name, None)
    import torch

    threads = torch.get_num_threads()
    try:
        assert bench.main(["--quick", "--only", "batched", "--out", str(tmp_path)]) == 0
    finally:
        torch.set_num_threads(threads)
    table = (tmp_path / "results.md").read_text()
    assert "| # | Figure | Target | Measured | Compared with | Met |" in table
    assert "batched 4x4 inverses" in table
    rows = json.loads((tmp_path / "results.json").read_text())["rows"]
    assert {row["section"] for row in rows} == {"3"}
    assert all(row["value"] is not None and row["value"] > 0 for row in rows)
