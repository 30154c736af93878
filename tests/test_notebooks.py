"""The notebooks in examples/notebooks/ (jupytext percent-format .py files) execute without error.

Each is converted with jupytext and run cell by cell in a fresh Python kernel (nbclient); any
cell that raises fails the test.  They plot inline, so each must also leave a PNG output.
"""

from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "examples" / "notebooks").glob("[0-9]*.py"))

pytestmark = pytest.mark.slow  # a Jupyter kernel per notebook


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 4


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def test_notebook_executes(path, tmp_path):
    import jupytext
    from nbclient import NotebookClient

    notebook = jupytext.read(path)
    # Run from a scratch directory: nothing a notebook writes lands in the repository.
    NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()  # raises on any cell error
    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.get("outputs", [])]
    assert not [output for output in outputs if output.get("output_type") == "error"]
    assert any("image/png" in output.get("data", {}) for output in outputs), f"{path.name} showed no figure"
