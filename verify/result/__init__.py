"""A rebuild's result: the directory (:class:`ResultDir`) and its typed record (:class:`RebuildRecord`).

:mod:`verify.result.integrity` checks a finished result before anyone reads it; :mod:`verify.result.publish`
judges ``--out`` and publishes a finished build there.
"""

from verify.result.directory import ResultDir, ResultDirError
from verify.result.record import (
    REBUILD_FORMAT,
    BuildInputs,
    EnvironmentRef,
    PgoProfileRef,
    PgoTraining,
    PgoTrainingRun,
    RebuildRecord,
    RecipeRef,
    RecordedDifference,
    ReproducibilityCheck,
    SourceRef,
    TwoTrainings,
)

__all__ = [
    "REBUILD_FORMAT",
    "BuildInputs",
    "EnvironmentRef",
    "PgoProfileRef",
    "PgoTraining",
    "PgoTrainingRun",
    "RebuildRecord",
    "RecipeRef",
    "RecordedDifference",
    "ReproducibilityCheck",
    "ResultDir",
    "ResultDirError",
    "SourceRef",
    "TwoTrainings",
]
