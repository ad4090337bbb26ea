"""What the tests that compare with an earlier commit's numbers share: the commit's files,
whether the environment is the pinned one, and which CPU paths numpy's functions take.

Floating point is the same to the bit on one kind of machine, not across CPUs: numpy's
SIMD functions (``exp`` with AVX-512, for one) round the last bit otherwise. A recorded
result is kept per kind of machine (:func:`cpu_paths`); on a machine of a kind none was
recorded on, and only in the pinned environment, the earlier commit's own code is run
there and is the reference.
"""

from __future__ import annotations

import io
import platform
import subprocess
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: The packages whose versions decide the bits of the study's numbers.
NUMERIC_PACKAGES = ("numpy", "scipy", "pandas", "pyarrow")


def cpu_paths() -> str:
    """The machine and numpy's dispatch targets its CPU takes, e.g.
    ``x86_64:X86_V3,X86_V4,AVX512_ICL``: machines alike here compute alike."""
    from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__

    taken = [name for name in __cpu_dispatch__ if __cpu_features__.get(name)]
    return f"{platform.machine()}:{','.join(taken)}"


def pinned_environment() -> bool:
    """Whether the numeric packages are the versions requirements.txt pins."""
    from importlib.metadata import version

    pins = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        name, _, rest = line.partition("==")
        pins[name.strip().lower()] = rest.split("#")[0].strip()
    return all(pins.get(name) == version(name) for name in NUMERIC_PACKAGES)


def commit_files(revision: str, dest: Path) -> bool:
    """Write the files of ``revision`` (a full commit id) into ``dest`` (``git archive``:
    nothing is written into the repository); False where the clone lacks it."""
    archive = subprocess.run(
        ["git", "archive", "--format=tar", revision], cwd=ROOT, capture_output=True
    )
    if archive.returncode != 0:
        return False
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(dest, filter="data")
    return True
