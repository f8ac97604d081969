"""The CI job matrix (``cpython-verify/plan/v1``): what ``plan --json`` writes and ``merge --plan`` reads.

One model for both directions: :class:`Plan` is what ``plan`` prints (:meth:`Plan.to_json`) and what
:func:`read_plan` accepts. The nightly workflow hands GitHub Actions the ``include`` list alone (a
``format`` key would become a matrix dimension) and later writes that matrix back as ``plan.json`` for
``merge``: so a plan without ``format`` is read as this format, and every other key is required or refused
as the model says.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Final, Literal

from pydantic import Field, model_validator

from verify.common.errors import OperationalError
from verify.common.limits import PLAN_MAX_BYTES
from verify.common.strict import OMITTED, Omittable, StrictModel, read_json_model, table_error
from verify.source import names
from verify.source.name_fields import FileName, KnownRunner, ProfileName, SeriesName
from verify.source.releases import Version

PLAN_FORMAT: Final = "cpython-verify/plan/v1"
REBUILDER_LETTERS: Final = "abcdefghij"
"""The ``rebuilder`` of each of a job's independent rebuilds, in order (``--independent-rebuilds``' bound)."""


class PlanError(OperationalError):
    """A plan file cannot be read or is not a plan (one line, exit 2)."""


class PlanJob(StrictModel):
    """One job: a release x profile x runner, and which of its independent rebuilds it is."""

    version: Version
    series: SeriesName
    """The version's series (the recipe the job builds with)."""
    profile: ProfileName
    runner: KnownRunner
    id: FileName
    """The job's name: its attestation is published as ``ID.intoto.json`` (or ``.sigstore.json``)."""
    rebuilder: Omittable[Annotated[str, Field(pattern=f"^[{REBUILDER_LETTERS[0]}-{REBUILDER_LETTERS[-1]}]$")]] = OMITTED
    """Which of the release x profile x runner's independent rebuilds this job is (a, b, ...; ``plan
    --independent-rebuilds``). Absent in plans made before it existed."""

    @model_validator(mode="after")
    def _series_is_the_version_s(self) -> PlanJob:
        problem = names.series_problem(self.series, self.version)
        if problem is not None:
            raise table_error(problem)
        return self


class Plan(StrictModel):
    """A plan: its jobs, in the order ``plan`` made them."""

    format: Literal["cpython-verify/plan/v1"] = PLAN_FORMAT
    """Always written; absent from the matrix the workflow passes on, so not required when read."""
    include: tuple[PlanJob, ...] = Field(strict=False)


def read_plan(path: Path) -> Plan:
    """The plan in ``path`` (``plan --json`` output, or the workflow's matrix of it); :class:`PlanError`, one
    line naming the file and the field, for anything else."""
    return read_json_model(path, Plan, what="plan", max_bytes=PLAN_MAX_BYTES, error=PlanError)


def plan_json_schema() -> dict[str, Any]:
    """``plan-v1.json``: the schema of what ``plan --json`` prints (``format`` included)."""
    schema = Plan.model_json_schema()
    schema["required"] = sorted({*schema.get("required", []), "format"})
    return schema
