"""Spark's implicit ALS on an in-memory matrix, and the Spark session it runs in.

The ``spark`` backend's ``fit`` and ``growthrec.spark`` (training from files) both fit
through here; pyspark is imported only when a function here runs."""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator, Mapping
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from growthrec.errors import DataError, GrowthrecError, ParameterError

if TYPE_CHECKING:
    from pyspark.ml.recommendation import ALSModel
    from pyspark.sql import DataFrame, SparkSession

__all__ = [
    "DEFAULT_MASTER",
    "INSTALL_HINT",
    "SESSION_DEFAULTS",
    "collect",
    "first_line",
    "fit_matrix",
    "fit_spark_als",
    "import_pyspark",
    "ratings_from_matrix",
    "spark_errors",
    "spark_session",
]

#: How to get the optional dependency; named in the error raised without it.
INSTALL_HINT = 'pip install "growthrec[spark]"'
DEFAULT_MASTER = "local[*]"
#: Settings of the sessions growthrec starts itself; ``conf`` given by the caller overrides each.
SESSION_DEFAULTS: dict[str, str] = {"spark.ui.showConsoleProgress": "false"}


def import_pyspark(what: str) -> ModuleType:
    """The ``pyspark`` package, or a one-line ``ParameterError`` saying how to install it."""
    try:
        module = importlib.import_module("pyspark")
        importlib.import_module("pyspark.sql")
    except ImportError as exc:
        raise ParameterError(
            f"{what} needs pyspark, which is not installed ({exc}); install it with: {INSTALL_HINT}"
        ) from None
    return module


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    return line if len(line) <= 300 else line[:297] + "..."


@contextlib.contextmanager
def spark_errors(what: str) -> Iterator[None]:
    """Spark's and py4j's exceptions as one-line ``GrowthrecError``s (a data error for a path)."""
    from py4j.protocol import Py4JError
    from pyspark.errors import PySparkException

    try:
        yield
    except GrowthrecError:
        raise
    except (PySparkException, Py4JError) as exc:
        line = first_line(exc)
        if "PATH_NOT_FOUND" in line or "Path does not exist" in line:
            raise DataError(f"{what}: {line}") from None
        if "JAVA_GATEWAY_EXITED" in line or "JAVA_HOME" in line:
            line += " (Spark needs Java: 17 or 21 for pyspark 4, 8/11/17 for 3.5; set JAVA_HOME)"
        if "maxResultSize" in line:
            line += " (the model is collected to the driver: raise spark.driver.maxResultSize)"
        raise GrowthrecError(f"{what}: {line}") from None


@contextlib.contextmanager
def spark_session(
    master: str | None = None, conf: Mapping[str, object] | None = None
) -> Iterator[SparkSession]:
    """A Spark session for one piece of work.

    The running session is used as it is when there is one (and left running); asking for
    another ``master`` or for ``conf`` then is an error, as Spark would silently ignore both.
    Otherwise a session is started on ``master`` (default ``local[*]``) with
    ``SESSION_DEFAULTS`` overlaid by ``conf``, and stopped on leaving; the JVM stays up, so the
    next session starts in well under a second.
    """
    import_pyspark("Spark training")
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

    # A running context (not only this thread's active session) means the session is not ours.
    if SparkContext._active_spark_context is not None:
        active = SparkSession.builder.getOrCreate()
        running = active.sparkContext.master
        if master is not None and master != running:
            raise ParameterError(
                f"a Spark session is already running on {running!r}, not {master!r}: stop it "
                "(spark.stop()) or leave the master unset to use it"
            )
        if conf:
            raise ParameterError(
                f"a Spark session is already running, so spark_conf {dict(conf)!r} cannot "
                "apply: stop it (spark.stop()) or set these on that session"
            )
        yield active
        return
    builder = SparkSession.builder.appName("growthrec").master(master or DEFAULT_MASTER)
    for key, value in {**SESSION_DEFAULTS, **(conf or {})}.items():
        builder = builder.config(key, str(value))
    with spark_errors("Spark could not start"):
        session = builder.getOrCreate()
        session.sparkContext.setLogLevel("ERROR")
    try:
        yield session
    finally:
        session.stop()


#: SQL settings for the duration of a load, the session's own restored afterwards: times
#: without a zone read as UTC (as pyarrow reads them); adaptive execution may coalesce the
#: partitions of cached frames (measured on ml-latest-small in local mode: 54 s -> 10 s, as


def collect(frame: DataFrame) -> Any:
    """``frame`` on the driver as a pyarrow Table (pyspark 4: through Arrow; 3.5: rows)."""
    import pyarrow as pa

    if hasattr(frame, "toArrow"):
        return frame.toArrow()
    rows = frame.collect()
    return pa.table({name: [row[n] for row in rows] for n, name in enumerate(frame.columns)})


def ratings_from_matrix(spark: SparkSession, matrix: sp.csr_matrix) -> DataFrame:
    """ALS's input from a weighted CSR matrix: its non-zero entries as (user, item, rating)."""
    import pyarrow as pa
    import pyspark

    coo = matrix.tocoo()
    keep = coo.data != 0
    table = pa.table(
        {
            "user": coo.row[keep].astype(np.int32),
            "item": coo.col[keep].astype(np.int32),
            "rating": coo.data[keep].astype(np.float32),
        }
    )
    if int(pyspark.__version__.split(".")[0]) >= 4:
        return spark.createDataFrame(table)
    rows = zip(*(table.column(n).to_pylist() for n in table.column_names), strict=True)
    return spark.createDataFrame(list(rows), "user int, item int, rating float")


def _factor_matrix(frame: DataFrame, n_rows: int, rank: int) -> np.ndarray:
    """ALS's (id, features) factors as a dense float32 matrix; ids ALS never saw get zeros."""
    import pyarrow as pa

    table = collect(frame.select("id", "features"))
    out = np.zeros((n_rows, rank), dtype=np.float32)
    if table.num_rows:
        features = pa.chunked_array(table.column("features")).combine_chunks()
        values = np.asarray(features.flatten().to_numpy(), dtype=np.float32)
        out[table.column("id").to_numpy()] = values.reshape(-1, rank)
    return out


def fit_spark_als(
    ratings: DataFrame, n_users: int, n_items: int, params: Mapping[str, Any], seed: int
) -> tuple[dict[str, np.ndarray], ALSModel]:
    """Fit ``ALS(implicitPrefs=True)`` on (user, item, rating) rows; the factor matrices (float32,
    rows indexed by the user and item ids of ``ratings``) and Spark's own model.

    ``params`` are the ``spark`` backend's, resolved (see ``growthrec.backends.spark``).
    """
    from pyspark.ml.recommendation import ALS

    als = ALS(
        rank=params["factors"],
        maxIter=params["iterations"],
        regParam=params["regularization"],
        alpha=params["alpha"],
        implicitPrefs=True,
        seed=int(seed),
        userCol="user",
        itemCol="item",
        ratingCol="rating",
        coldStartStrategy="drop",
    )
    if params["blocks"]:
        als.setNumUserBlocks(params["blocks"]).setNumItemBlocks(params["blocks"])
    model = als.fit(ratings)
    arrays = {
        "user_factors": _factor_matrix(model.userFactors, n_users, model.rank),
        "item_factors": _factor_matrix(model.itemFactors, n_items, model.rank),
    }
    return arrays, model


def fit_matrix(
    matrix: sp.csr_matrix, params: Mapping[str, Any], seed: int, *, threads: int | None = None
) -> dict[str, np.ndarray]:
    """The ``spark`` fit of an in-memory (weighted) matrix, on the running session as it is,
    or on a ``local[threads]`` one started for it (``local[*]`` without ``threads``)."""
    from pyspark import SparkContext

    running = SparkContext._active_spark_context is not None
    master = None if running or threads is None else f"local[{int(threads)}]"
    with spark_session(master) as spark, spark_errors("backend 'spark'"):
        ratings = ratings_from_matrix(spark, matrix)
        arrays, _ = fit_spark_als(ratings, *matrix.shape, params, seed)
    return arrays
