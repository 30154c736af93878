"""The figures of README.md and the docs pages against a fresh run: each cheap figure of
docs/regenerate.py recomputes its numbers and every page that quotes it must contain the text
they give, so no page can drift from the code.  (`python docs/regenerate.py --all` also runs the
slow ones and prints everything.)"""
import importlib.util
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"


def _regenerate():
    spec = importlib.util.spec_from_file_location("regenerate", DOCS / "regenerate.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("regenerate", module)
    spec.loader.exec_module(module)
    return sys.modules["regenerate"]


regenerate = _regenerate()
CHEAP = [figure for figure in regenerate.registry().values() if figure.cheap]


@pytest.mark.parametrize("figure", CHEAP, ids=[figure.name for figure in CHEAP])
def test_readme_quotes_a_fresh_run(figure):
    if figure.name.startswith("mlp"):
        pytest.importorskip("sklearn")
    texts = figure.run()
    assert texts, f"{figure.name} backs no text"
    missing = regenerate.missing(texts, regenerate.read_pages(figure.pages))
    assert not missing, (f"{', '.join(figure.pages)} no longer match a fresh run of {figure.name} ({figure.what}); "
                         "they should say:\n" + "\n".join(missing))


def test_every_page_a_figure_names_exists():
    for figure in regenerate.registry().values():
        for page in figure.pages:
            assert (regenerate.ROOT / page).is_file(), f"{figure.name} names a missing page {page}"


def test_a_text_missing_from_one_of_its_pages_is_missing():
    pages = {"README.md": "steps: 786", "docs/getting-started.md": "steps: 785"}
    assert regenerate.missing(["steps: 786"], pages) == ["steps: 786"]
    assert regenerate.missing(["steps: 78"], pages) == []


def test_every_figure_has_a_name_and_the_script_lists_them(capsys):
    assert regenerate.main(["--list"]) == 0
    listed = capsys.readouterr().out
    for name in ("quick_start", "configs_table", "minimisation", "completion", "mlp_readout_10", "bench_table",
                 "bench_headline"):
        assert name in listed


def test_a_drifted_number_is_reported(monkeypatch, capsys):
    stale = regenerate.Figure("stale", lambda: ["hidden entries to 4e-16 in 211 evaluations"], True, "an old figure")
    monkeypatch.setattr(regenerate, "registry", lambda: {"stale": stale})
    assert regenerate.main([]) == 1
    assert "DRIFTED hidden entries to 4e-16 in 211 evaluations" in capsys.readouterr().out
