"""From CSV or Parquet paths to a ``Model`` of the ``spark`` backend, trained on Spark."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from growthrec.backends._spark_als import (
    fit_spark_als,
    spark_errors,
    spark_session,
)
from growthrec.backends.spark import SparkALSBackend
from growthrec.core.model import Model
from growthrec.core.seeds import resolve_rng
from growthrec.core.weighting import WEIGHTINGS
from growthrec.data.cleaning import Cleaning
from growthrec.data.loading import Columns
from growthrec.errors import ParameterError
from growthrec.spark.reading import (
    SparkLoadReport,
    as_paths,
    file_format_of,
    load_pairs,
    ratings_from_pairs,
)

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = ["BACKEND", "SparkTraining", "spark_training", "train_from_path"]

#: The backend whose model files this module writes, and whose scoring reads them.
BACKEND = SparkALSBackend.name


@attrs.frozen(eq=False)
class SparkTraining:
    """A model trained on Spark, with what was read and dropped, and where the time went."""

    model: Model
    report: SparkLoadReport
    master: str
    spark_version: str
    #: ``session`` (start-up), ``load`` (read, clean, index, collect the pairs), ``als`` (fit
    #: and collect the factors) and ``total``, in seconds.
    seconds: dict[str, float]


def spark_training(
    path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    columns: Columns | None = None,
    *,
    params: Mapping[str, Any] | None = None,
    cleaning: Cleaning | None = None,
    weighting: str = "binary",
    seed: int | None = 0,
    master: str | None = None,
    spark_conf: Mapping[str, object] | None = None,
    file_format: str | None = None,
    session: SparkSession | None = None,
    checkpoint_dir: str | None = None,
) -> SparkTraining:
    """``train_from_path``, also returning the load report, the master and the timings."""
    from growthrec.backends._implicit import library_seed
    from growthrec.backends.contract import resolve_params
    from growthrec.backends.registry import get_backend

    resolved = resolve_params(get_backend(BACKEND), params or {})
    if weighting not in WEIGHTINGS:
        raise ParameterError(
            f"unknown weighting {weighting!r}; choose one of {', '.join(WEIGHTINGS)}"
        )
    paths = as_paths(path)
    file_format_of(paths, file_format)  # a bad name fails before Spark starts
    library = library_seed(resolve_rng(seed))
    start = time.perf_counter()
    seconds: dict[str, float] = {}
    context = contextlib.nullcontext(session) if session else spark_session(master, spark_conf)
    with context as spark:
        seconds["session"] = time.perf_counter() - start
        if checkpoint_dir:
            spark.sparkContext.setCheckpointDir(checkpoint_dir)
        loaded = load_pairs(spark, paths, columns, cleaning, file_format=file_format)
        seconds["load"] = time.perf_counter() - start - seconds["session"]
        train = loaded.train
        try:
            with spark_errors(BACKEND):
                ratings = ratings_from_pairs(loaded.pairs, weighting)
                arrays, _ = fit_spark_als(ratings, train.n_users, train.n_items, resolved, library)
        finally:
            loaded.pairs.unpersist()
        running, version = spark.sparkContext.master, spark.version
    seconds["als"] = time.perf_counter() - start - seconds["session"] - seconds["load"]
    seconds["total"] = time.perf_counter() - start
    model = Model(BACKEND, resolved, arrays, train, weighting, seed)
    return SparkTraining(model, loaded.report, running, version, seconds)


def train_from_path(
    path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    columns: Columns | None = None,
    *,
    params: Mapping[str, Any] | None = None,
    cleaning: Cleaning | None = None,
    weighting: str = "binary",
    seed: int | None = 0,
    master: str | None = None,
    spark_conf: Mapping[str, object] | None = None,
    file_format: str | None = None,
    session: SparkSession | None = None,
    checkpoint_dir: str | None = None,
) -> Model:
    """Train ``spark`` on Spark from CSV/Parquet path(s); the ``Model`` every backend makes.

    ``params`` are the ``spark`` parameters (``factors``, ``regularization``, ``alpha``,
    ``iterations``, ``blocks``); ``weighting`` turns each pair's summed weight into ALS's
    rating as ``growthrec train --weighting`` does; ``seed`` gives the same Spark seed as
    ``fit_model(..., "spark", seed=seed)``. Spark: ``session`` if given (left running), else
    the running session, else a new one on ``master`` (default ``local[*]``) with ``spark_conf``
    (e.g. ``{"spark.executor.memory": "8g"}``), stopped at the end. ``checkpoint_dir``, a
    directory every executor can write (HDFS, S3, ...), makes the k-core rounds' checkpoints
    reliable (else they are local to the executors) and lets ALS checkpoint every 10
    iterations. Save the result with ``growthrec.store.modelfile.save_model``.
    """
    return spark_training(
        path,
        columns,
        params=params,
        cleaning=cleaning,
        weighting=weighting,
        seed=seed,
        master=master,
        spark_conf=spark_conf,
        file_format=file_format,
        session=session,
        checkpoint_dir=checkpoint_dir,
    ).model
