"""The book builds: every chapter executes under the smoke preset and renders with its results.

What `python3 tasks.py book --preset smoke` does, into a temporary copy of book/: papermill
each chapter of book/_toc.yml (python API, from notebooks/ so the chapters find the run cache
at ../runs), then `jupyter-book build`, then look at the HTML.
"""
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import papermill
import pytest
import yaml

pytestmark = pytest.mark.slow  # builds the book

ROOT = Path(__file__).resolve().parents[2]
CHAPTERS = ["01_affine_approximation", "02_propositions", "03_transfer_cifar10", "04_transfer_cifar100",
            "05_noise_robustness", "06_cost_of_jacobians", "07_results_at_a_glance", "08_how_this_changed"]
TOC = CHAPTERS[6:7] + CHAPTERS[:6] + CHAPTERS[7:]
"""The verdict page comes first in the book, executed after the chapters whose runs it reads; the
appendix on the earlier attempts comes last."""
RESULTS = {"03_transfer_cifar10": ("<table", "<img"), "04_transfer_cifar100": ("<table", "<img"),
           "05_noise_robustness": ("<table", "<img"), "06_cost_of_jacobians": ("<table", "<img")}
"""What each experiment chapter's page must show: its tables and its figure."""
JUPYTER_BOOK = [sys.executable, "-c", "import sys; from jupyter_book.cli.main import main; sys.exit(main())"]


def execute(name: str, out: Path, **parameters) -> nbformat.NotebookNode:
    """Run one chapter headless (smoke unless told otherwise) and return the executed notebook."""
    papermill.execute_notebook(str(ROOT / "notebooks" / f"{name}.ipynb"), str(out),
                               parameters={"preset": "smoke", **parameters}, cwd=str(ROOT / "notebooks"),
                               progress_bar=False, log_output=False, kernel_name="python3")
    return nbformat.read(out, as_version=4)


def text_of(nb: nbformat.NotebookNode) -> str:
    """Everything the chapter printed or displayed (streams, plain text, Markdown, HTML)."""
    parts = []
    for c in nb.cells:
        for o in c.get("outputs", []) if c.cell_type == "code" else []:
            parts.append(o.get("text", ""))
            parts.extend(str(o.get("data", {}).get(k, "")) for k in ("text/plain", "text/markdown", "text/html"))
    return "\n".join(parts)


def test_toc_lists_the_chapters_and_config_is_a_relative_link():
    toc = yaml.safe_load((ROOT / "book" / "_toc.yml").read_text())
    assert toc["format"] == "jb-book" and toc["root"] == "intro"
    assert [c["file"] for c in toc["chapters"]] == TOC
    link = ROOT / "book" / "_config.yml"
    assert link.is_symlink() and not Path(link.readlink()).is_absolute()
    assert link.resolve() == (ROOT / "_config.yml").resolve()
    config = yaml.safe_load(link.read_text())
    assert config["execute"]["execute_notebooks"] == "off" and config["only_build_toc_files"] is True


def test_every_chapter_executes_and_the_book_builds(tmp_path):
    book = tmp_path / "book"
    book.mkdir()
    for name in ("_toc.yml", "intro.md"):
        shutil.copy(ROOT / "book" / name, book / name)
    shutil.copytree(ROOT / "book" / "_static", book / "_static")
    shutil.copytree(ROOT / "book" / "_ext", book / "_ext")
    shutil.copy((ROOT / "book" / "_config.yml").resolve(), book / "_config.yml")
    for name in CHAPTERS:
        nb = execute(name, book / f"{name}.ipynb")
        errors = [o for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"]
        assert not errors, f"{name}: {errors[0]['ename']}: {errors[0]['evalue']}" if errors else ""
    sys.path.insert(0, str(ROOT))
    import tasks

    tasks.verdict_include(book)   # the landing page opens with chapter 7's verdict table
    built = subprocess.run(JUPYTER_BOOK + ["build", str(book)], capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    html = book / "_build" / "html"
    assert 'class="lakt-verdicts"' in (html / "intro.html").read_text(), "the landing page has no verdict table"
    for name in CHAPTERS:
        page = html / f"{name}.html"
        assert page.is_file(), f"no page for {name}"
        text = page.read_text()
        for marker in RESULTS.get(name, ()):
            assert marker in text, f"{name}.html shows no {marker}>"
        assert "<table" in text or "<img" in text, f"{name}.html shows no table and no figure"


def test_cifar100_chapter_runs_like_chapter_3_when_its_data_is_available(tmp_path):
    """Chapter 4's other branch: with a dataset on disk (digits stands in) it shows our runs."""
    nb = execute("04_transfer_cifar100", tmp_path / "ch4.ipynb", dataset="digits")
    text = text_of(nb)
    assert "running our experiments: True" in text
    assert "all runs finished: True" in text and "ours: gain over CE" in text
    assert not [o for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"]


def test_chapter_4_without_data_says_so_and_invents_nothing(tmp_path):
    nb = execute("04_transfer_cifar100", tmp_path / "ch4.ipynb", data_root=str(tmp_path / "nowhere"))
    text = text_of(nb)
    assert "running our experiments: False" in text and "is not a folder" in text
    assert "lakt sweep --preset paper --dataset cifar100 --data-root DIR --results runs" in text
    assert "all runs finished" not in text and "ours − paper" not in text


@pytest.mark.parametrize("name", ["03_transfer_cifar10", "05_noise_robustness"])
def test_chapter_refuses_missing_data_in_one_line(tmp_path, name):
    with pytest.raises(papermill.PapermillExecutionError, match="not available"):
        execute(name, tmp_path / "out.ipynb", dataset="cifar10", data_root=str(tmp_path))


def test_verdict_page_without_runs_stops_in_one_line_naming_folder_and_parameter(tmp_path):
    with pytest.raises(papermill.PapermillExecutionError, match=r"results folder '.*empty' does not exist; set real_results"):
        execute("07_results_at_a_glance", tmp_path / "out.ipynb", real_results=str(tmp_path / "empty"))

