"""What a PGO training proved: the trainer's record of its run, read and judged after the training.

cpython-verify's trainer (``verify/rebuild/pgo_trainer.py``) writes :data:`TRAINER_RECORD_NAME` beside
itself. A build whose profile it trained fails unless that record exists, parses, and shows a run
that trained: ASLR off, the hash seed fixed, tests run and none failed or errored
(:meth:`verify.result.record.PgoTrainingRun.problems`). CPython's Makefile decides nothing here: 3.8 to
3.11 run ``$(PROFILE_TASK) || true``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from verify.common.fsutil import read_regular_file
from verify.common.jsonutil import loads_bounded
from verify.common.limits import PGO_TRAINING_MAX_BYTES
from verify.result import PgoTrainingRun

TRAINER_RECORD_NAME = "cpython-verify-pgo-training-run.json"
"""The file the trainer writes in its own directory (``verify/rebuild/pgo_trainer.py``'s ``RECORD_NAME``)."""
FIRST_STAGE_NAME = TRAINER_RECORD_NAME + ".first-stage"
"""What the trainer's first stage saw and did (``pgo_trainer.py``'s ``STAGE_NAME``), beside the record: the
training process never reads it, because every varying string it handled would change its counters."""
COPY_REVERSED_VARIABLE = "CPYTHON_VERIFY_PGO_COPY_REVERSED"
"""Set to ``1`` in the trainer's first stage, it makes its copy of the build in reverse sorted order
(``pgo_trainer.py``'s ``COPY_REVERSED_VARIABLE``; the determinism bench's ``--reverse-copy``)."""
FIRST_STAGE_FIELDS = (
    "stack_limit", "descriptors_closed", "access_times_pinned", "signals_reset", "environment_removed", "host",
    "counters_removed", "training_copy",
)  # fmt: skip
"""The record's fields the first stage's file supplies (and ``aslr.how``, from its ``aslr``)."""


def read_training_run(path: Path) -> tuple[PgoTrainingRun | None, tuple[str, ...]]:
    """The trainer's record at ``path`` and why it does not prove a training (empty when it does).

    A missing, oversized or unreadable record is a problem, never an exception: the caller fails the
    build with every problem named."""
    try:
        raw = read_regular_file(path, PGO_TRAINING_MAX_BYTES)
    except FileNotFoundError:
        return None, ("the trainer wrote no record of its run (it did not run, or it was stopped before the end)",)
    except OSError as error:
        return None, (f"the trainer's record cannot be read: {error.strerror or error}",)
    if len(raw) > PGO_TRAINING_MAX_BYTES:
        return None, (f"the trainer's record is larger than {PGO_TRAINING_MAX_BYTES >> 10} KiB",)
    try:
        document = loads_bounded(raw)
        first_stage, missing = _first_stage(path.with_name(FIRST_STAGE_NAME), document)
        run = PgoTrainingRun.model_validate_json(json.dumps(_merged(document, first_stage)))
    except (ValueError, ValidationError) as error:
        reason = error.errors()[0]["msg"] if isinstance(error, ValidationError) else str(error)
        return None, (f"the trainer's record is not a training record: {reason}",)
    return run, (*missing, *run.problems())


def _first_stage(path: Path, record: Any) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The first stage's file beside the record, and the problem its absence is (none for a refusal, which
    may come before the first stage wrote it)."""
    try:
        raw = read_regular_file(path, PGO_TRAINING_MAX_BYTES)
    except FileNotFoundError:
        if isinstance(record, dict) and record.get("status") == "refused":
            return {}, ()
        return {}, ("the trainer's first stage left no record of what it set (it was not started by the trainer)",)
    except OSError as error:
        raise ValueError(f"{path.name} cannot be read: {error.strerror or error}") from None
    if len(raw) > PGO_TRAINING_MAX_BYTES:
        raise ValueError(f"{path.name} is larger than {PGO_TRAINING_MAX_BYTES >> 10} KiB")
    facts = loads_bounded(raw)
    if not isinstance(facts, dict):
        raise ValueError(f"{path.name} is not a JSON object")
    return facts, ()


def _merged(record: Any, first_stage: dict[str, Any]) -> Any:
    """The record with the first stage's facts in their fields (the record's own values win)."""
    if not isinstance(record, dict) or not first_stage:
        return record
    merged = {name: first_stage[name] for name in FIRST_STAGE_FIELDS if name in first_stage} | record
    aslr = record.get("aslr")
    if isinstance(aslr, dict) and "how" not in aslr and "aslr" in first_stage:
        merged["aslr"] = {**aslr, "how": first_stage["aslr"]}
    unknown = first_stage.keys() - {*FIRST_STAGE_FIELDS, "aslr"}
    if unknown:
        raise ValueError(f"the first stage's record has fields a training record lacks: {', '.join(sorted(unknown))}")
    return merged


def counters_digest(top: Path, paths: Iterable[Path]) -> str:
    """The sha256 of the sorted ``<sha256>  <relative path>`` lines of ``paths`` (``.gcda`` files under
    ``top``): two trainings that wrote the same counters have the same digest."""
    lines = sorted(
        f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {path.relative_to(top).as_posix()}\n" for path in paths
    )
    return hashlib.sha256("".join(lines).encode()).hexdigest()
