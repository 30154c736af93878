"""Execute the notebooks and write their figures to docs/figures/tutorials/ for the documentation.

    python examples/notebooks/export_figures.py            # every notebook
    python examples/notebooks/export_figures.py 02_svd     # some of them

Each notebook runs in a fresh kernel from a scratch directory (as tests/test_notebooks.py runs
them); its inline PNG outputs are written in order as ``<notebook>-<n>.png``.
"""

from __future__ import annotations

import argparse
import base64
import tempfile
from pathlib import Path

import jupytext
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
OUT = HERE.parent.parent / "docs" / "figures" / "tutorials"


def export(path: Path, out: Path = OUT) -> list[Path]:
    notebook = jupytext.read(path)
    with tempfile.TemporaryDirectory() as scratch:
        NotebookClient(
            notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": scratch}}
        ).execute()
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob(f"{path.stem}-*.png"):
        old.unlink()
    written = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []) if cell.cell_type == "code" else []:
            png = output.get("data", {}).get("image/png")
            if png:
                target = out / f"{path.stem}-{len(written) + 1}.png"
                target.write_bytes(base64.b64decode(png))
                written.append(target)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="notebook names (default: all)")
    names = parser.parse_args().names
    for path in sorted(HERE.glob("[0-9]*.py")):
        if not names or path.stem in names:
            for written in export(path):
                print(written.relative_to(OUT.parent.parent.parent))


if __name__ == "__main__":
    main()
