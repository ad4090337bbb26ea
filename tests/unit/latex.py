"""Compile a paper table in a minimal LaTeX document, as a manuscript would use it."""

from __future__ import annotations

import subprocess
from pathlib import Path


def compile_table(body: str, folder: Path) -> subprocess.CompletedProcess[str]:
    """Run pdflatex on ``body`` (a table) inside an article with booktabs, in ``folder``.

    The result's ``returncode`` is 0 when the document compiled; ``folder/doc.pdf`` is then
    the output.
    """
    document = (
        "\\documentclass{article}\n\\usepackage[utf8]{inputenc}\n\\usepackage{booktabs}\n"
        f"\\begin{{document}}\n{body}\\end{{document}}\n"
    )
    (folder / "doc.tex").write_text(document, encoding="utf-8")
    return subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "doc.tex"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
