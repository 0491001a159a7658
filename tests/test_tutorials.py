"""Every tutorial notebook runs top to bottom without an error (in quick mode).

Each notebook is executed in a copy inside a temporary folder, with the
environment variable TINYNET_TUTORIAL_QUICK=1, which its first code cell reads to
shrink the expensive cells (fewer steps, less data).
"""

import shutil
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

TUTORIALS = Path(__file__).resolve().parent.parent / "tutorials"
NOTEBOOKS = sorted(TUTORIALS.glob("[0-9][0-9]_*.ipynb"))
CELL_TIMEOUT_S = 300
# Lessons whose scripts run under mpiexec, which needs mpi4py and an MPI.
NEEDS_MPI = {"11_distributed.ipynb"}


def test_the_course_has_eleven_lessons():
    assert [path.name[:2] for path in NOTEBOOKS] == [f"{i:02d}" for i in range(1, 12)]


def skip_without_mpi():
    pytest.importorskip("mpi4py", reason="the lesson runs scripts under mpiexec, which needs mpi4py: "
                        "pip install -e '.[mpi]'")
    if not (Path(sys.executable).parent / "mpiexec").exists() and shutil.which("mpiexec") is None:
        pytest.skip("the lesson runs scripts under mpiexec, and there is none beside this Python or on PATH: "
                    "pip install -e '.[mpi]'")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def test_notebook_runs(path, tmp_path, monkeypatch):
    if path.name in NEEDS_MPI:
        skip_without_mpi()
    copy = tmp_path / path.name
    shutil.copy(path, copy)
    notebook = nbformat.read(copy, as_version=4)
    # The kernel inherits this process's environment.
    monkeypatch.setenv("TINYNET_TUTORIAL_QUICK", "1")
    client = nbclient.NotebookClient(
        notebook, timeout=CELL_TIMEOUT_S, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()  # raises CellExecutionError, naming the cell, if any cell fails
    errors = [output for cell in notebook.cells if cell.cell_type == "code"
              for output in cell.get("outputs", []) if output.get("output_type") == "error"]
    assert not errors
