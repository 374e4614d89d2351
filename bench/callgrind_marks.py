"""Marks for callgrind around the measured part of a run: `zero()` before it, `dump()` after,
so `valgrind --tool=callgrind` writes that part's instructions to a file of their own (the `.1`
dump) apart from start-up, seeding and warm-up. Instructions are counted, not timed: the same
code gives the same count whatever else the machine does, which a before/after needs here.

The marks are valgrind's client requests (C macros from valgrind's own header), built once
with gcc into a small library; outside valgrind they do nothing.
"""

from __future__ import annotations

import ctypes
import subprocess
import tempfile
from pathlib import Path

_SOURCE = """
#include <valgrind/callgrind.h>
void marks_zero(void) { CALLGRIND_ZERO_STATS; }
void marks_dump(void) { CALLGRIND_DUMP_STATS_AT("measured"); }
"""


class CallgrindMarks:
    def __init__(self) -> None:
        built = Path(tempfile.mkdtemp(prefix="callgrind-marks-"))
        (built / "marks.c").write_text(_SOURCE)
        subprocess.run(
            ["gcc", "-shared", "-fPIC", "-O1", "-o", "marks.so", "marks.c"], cwd=built, check=True
        )
        self._library = ctypes.CDLL(str(built / "marks.so"))

    def zero(self) -> None:
        self._library.marks_zero()

    def dump(self) -> None:
        self._library.marks_dump()
