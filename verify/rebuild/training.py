"""What a PGO training proved: the trainer's record of its run, read and judged after the training.

cpython-verify's trainer (``verify/rebuild/pgo_trainer.py``) writes :data:`TRAINER_RECORD_NAME` beside
itself. A build whose profile it trained fails unless that record exists, parses, and shows a run
that trained: ASLR off, the hash seed fixed, tests run and none failed or errored
(:meth:`verify.result.record.PgoTrainingRun.problems`). CPython's Makefile decides nothing here: 3.8 to
3.11 run ``$(PROFILE_TASK) || true``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

from pydantic import ValidationError

from verify.common.jsonutil import loads_bounded
from verify.common.limits import PGO_TRAINING_MAX_BYTES
from verify.result import PgoTrainingRun

TRAINER_RECORD_NAME = "cpython-verify-pgo-training-run.json"
"""The file the trainer writes in its own directory (``verify/rebuild/pgo_trainer.py``'s ``RECORD_NAME``)."""


def read_training_run(path: Path) -> tuple[PgoTrainingRun | None, tuple[str, ...]]:
    """The trainer's record at ``path`` and why it does not prove a training (empty when it does).

    A missing, oversized or unreadable record is a problem, never an exception: the caller fails the
    build with every problem named."""
    try:
        with path.open("rb") as stream:
            raw = stream.read(PGO_TRAINING_MAX_BYTES + 1)
    except FileNotFoundError:
        return None, ("the trainer wrote no record of its run (it did not run, or it was stopped before the end)",)
    except OSError as error:
        return None, (f"the trainer's record cannot be read: {error.strerror or error}",)
    if len(raw) > PGO_TRAINING_MAX_BYTES:
        return None, (f"the trainer's record is larger than {PGO_TRAINING_MAX_BYTES >> 10} KiB",)
    try:
        loads_bounded(raw)
        run = PgoTrainingRun.model_validate_json(raw)
    except (ValueError, ValidationError) as error:
        reason = error.errors()[0]["msg"] if isinstance(error, ValidationError) else str(error)
        return None, (f"the trainer's record is not a training record: {reason}",)
    return run, run.problems()


def counters_digest(top: Path, paths: Iterable[Path]) -> str:
    """The sha256 of the sorted ``<sha256>  <relative path>`` lines of ``paths`` (``.gcda`` files under
    ``top``): two trainings that wrote the same counters have the same digest."""
    lines = sorted(
        f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {path.relative_to(top).as_posix()}\n" for path in paths
    )
    return hashlib.sha256("".join(lines).encode()).hexdigest()
