"""Reading and cleaning transactions with Spark: the rules of ``growthrec.data``, in Spark."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np

from growthrec.backends._spark_als import (
    collect,
    spark_errors,
)
from growthrec.core.interactions import IdMap, Interactions, interactions_from_codes
from growthrec.data.cleaning import Cleaning
from growthrec.data.cleaning import check_cleaning as _check_cleaning
from growthrec.data.loading import DEFAULT_TIME_COLUMN, DEFAULT_WEIGHT_COLUMN, Columns
from growthrec.errors import DataError, GrowthrecError, ParameterError

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

__all__ = [
    "LOAD_SQL_CONF",
    "SparkLoadReport",
    "SparkPairs",
    "as_paths",
    "file_format_of",
    "load_pairs",
    "ratings_from_pairs",
]

_FORMATS = {".csv": "csv", ".gz": "csv", ".parquet": "parquet", ".pq": "parquet"}
#: monotonically_increasing_id() puts the partition index above bit 33.
_PARTITION_SHIFT = 33


LOAD_SQL_CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.optimizer.canChangeCachedPlanOutputPartitioning": "true",
}


@contextlib.contextmanager
def _sql_conf(spark: SparkSession, settings: Mapping[str, str]) -> Iterator[None]:
    """``settings`` applied to the session while inside, its own values restored on leaving."""
    before = {key: spark.conf.get(key, None) for key in settings}
    for key, value in settings.items():
        spark.conf.set(key, value)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, value)


@attrs.frozen
class SparkLoadReport:
    """What Spark read, what each cleaning rule dropped (as ``LoadReport``), and what is left."""

    paths: tuple[str, ...]
    file_format: str
    rows_read: int
    #: Rule -> rows it dropped, in the order applied; the rule names of ``load_events``.
    dropped: dict[str, int] = attrs.field(hash=False)
    rows_kept: int
    n_users: int
    n_items: int
    #: Distinct (customer, item) pairs with a non-zero summed weight: the training matrix's nnz.
    n_pairs: int
    weight_column: str | None = None
    time_column: str | None = None

    def as_dict(self) -> dict[str, object]:
        """Plain values for JSON output (``dropped`` keeps the order the rules ran in)."""
        return {**attrs.asdict(self), "paths": list(self.paths), "dropped": dict(self.dropped)}


@attrs.frozen(eq=False)
class SparkPairs:
    """Cleaned, indexed pairs inside Spark, and what came back to the driver.

    ``pairs`` (persisted) has one row per distinct pair: ``user_id`` and ``item_id`` (external
    ids), ``user`` and ``item`` (their indices in ``train``), ``value`` (summed weight) and
    ``time`` (latest event time in seconds, or null).
    """

    pairs: DataFrame
    train: Interactions
    report: SparkLoadReport


def file_format_of(paths: Sequence[str], file_format: str | None = None) -> str:
    """``"csv"`` or ``"parquet"``: ``file_format`` if given, else from the paths' suffixes."""
    if file_format is not None:
        if file_format not in ("csv", "parquet"):
            raise ParameterError(f"file_format={file_format!r}; choose csv or parquet")
        return file_format
    kinds = set()
    for path in paths:
        name = str(path).rstrip("/").lower()
        suffix = os.path.splitext(name)[1]
        if suffix not in _FORMATS or (suffix == ".gz" and not name.endswith(".csv.gz")):
            raise ParameterError(
                f"{path}: cannot tell the file type from the name; name the format "
                "(file_format='csv' or 'parquet'; --format on the command line)"
            )
        kinds.add(_FORMATS[suffix])
    if len(kinds) > 1:
        raise ParameterError(f"{', '.join(map(str, paths))}: mixed CSV and Parquet; read one kind")
    return kinds.pop()


def _quoted(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _col(name: str) -> Column:
    from pyspark.sql import functions as F

    return F.col(_quoted(name))


def _read(
    spark: SparkSession, paths: Sequence[str], kind: str, text: Sequence[str] = ()
) -> DataFrame:
    """The files as a frame; CSV columns named in ``text`` exactly as written (ids), the other
    CSV columns of the type Spark infers over the whole file."""
    from pyspark.sql import types as T

    where = ", ".join(paths)
    with spark_errors(where):
        if kind == "parquet":
            frame = spark.read.parquet(*paths)
        else:
            # RFC 4180 quoting ("" inside quotes) and every space kept, as pyarrow reads CSV.
            options: dict[str, Any] = {
                "header": True,
                "quote": '"',
                "escape": '"',
                "ignoreLeadingWhiteSpace": False,
                "ignoreTrailingWhiteSpace": False,
                "mode": "FAILFAST",
            }
            inferred = spark.read.csv(list(paths), inferSchema=True, **options).schema
            # Inferred, "007" would be 7: the ids are read as text and become integers only
            # where that cannot change one (``_integer_forms``). Inference is the pass it was.
            schema = T.StructType(
                [
                    T.StructField(field.name, T.StringType()) if field.name in text else field
                    for field in inferred.fields
                ]
            )
            frame = spark.read.csv(list(paths), schema=schema, **options)
    if not frame.columns:
        raise DataError(f"{where}: the file is empty")
    return frame


def _problem(rank: int, condition: Column, *message: Column | str) -> Column:
    """A (rank, message) struct where ``condition`` holds: the lowest rank is reported."""
    from pyspark.sql import functions as F

    parts = [F.lit(m) if isinstance(m, str) else m.cast("string") for m in message]
    return F.when(condition, F.struct(F.lit(rank).alias("rank"), F.concat(*parts).alias("text")))


def _id_column(frame: DataFrame, name: str, rank: int, where: str) -> tuple[Column, list[Column]]:
    """The id as text or long (null where missing: null, "" or NaN), and its problems."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    kind = frame.schema[name].dataType
    raw = _col(name)
    if isinstance(kind, T.StringType):
        return F.when(raw != "", raw), []
    if isinstance(kind, (T.ByteType, T.ShortType, T.IntegerType, T.LongType)):
        return raw.cast("long"), []
    if isinstance(kind, (T.FloatType, T.DoubleType, T.DecimalType)):
        value = raw.cast("double")
        missing = raw.isNull() | F.isnan(value)
        bad = ~missing & ((value != F.rint(value)) | (F.abs(value) >= 2.0**63))
        problem = _problem(
            rank, bad, f"column {name!r} has ", value, "; ids must be text or whole numbers"
        )
        return F.when(~missing & ~bad, value.cast("long")), [problem]
    raise DataError(
        f"{where}: column {name!r} has type {kind.simpleString()}; ids must be text or integers"
    )


#: A canonical int64's text (``str(int(text)) == text``, the rule of ``growthrec.data``) before
#: a suffix; patterns end with ``\z``, as Java's ``$`` also matches before a final line break.
_CANONICAL = r"^(0|-?[1-9][0-9]{0,18})"
#: The forms in which a CSV id column is read as integers: every id a canonical int64, or every
#: one followed by ``.0`` (a float column as pandas writes it: ``17850.0`` is customer 17850).
_INTEGER_SUFFIXES = ("", r"\.0")


def _canonical(text: Column, suffix: str) -> Column:
    """Whether ``text`` is a canonical int64 followed by ``suffix`` (no cast: nothing can fail)."""
    from pyspark.sql import functions as F

    digits = F.regexp_replace(text, "^-|" + suffix + r"\z", "")
    limit = F.when(text.startswith("-"), "9223372036854775808").otherwise("9223372036854775807")
    too_big = (F.length(digits) == 19) & (digits > limit)  # same length: text order is numeric
    return text.rlike(_CANONICAL + suffix + r"\z") & ~too_big


def _integer_checks(key: str) -> list[Column]:
    """Per suffix of ``_INTEGER_SUFFIXES``, 1 if every present id of ``key`` has that form (null
    if none is present), else 0: aggregates, so the whole column is checked where it lies."""
    from pyspark.sql import functions as F

    text = F.col(key)
    return [
        F.min(F.when(text.isNotNull(), _canonical(text, suffix).cast("int"))).alias(f"{key}{n}")
        for n, suffix in enumerate(_INTEGER_SUFFIXES)
    ]


def _id_values(key: str, checks: Any) -> Column:
    """The text ids of ``key`` as longs if ``checks`` (a row of ``_integer_checks``) says every
    one is an integer in one form, else as text: as ``load_events`` reads a CSV id column."""
    from pyspark.sql import functions as F

    text = F.col(key)
    for n, suffix in enumerate(_INTEGER_SUFFIXES):
        if checks[f"{key}{n}"] != 0:  # null: no id at all, integers as in load_events
            plain = F.regexp_replace(text, suffix + r"\z", "") if suffix else text
            return plain.cast("long").alias(key)
    return text.alias(key)


def _number_column(frame: DataFrame, name: str) -> tuple[Column, Column]:
    """A numeric (or numeric text) column as double, and where text could not be read."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    raw = _col(name)
    if isinstance(frame.schema[name].dataType, T.NumericType):
        return raw.cast("double"), F.lit(False)
    value = F.expr(f"try_cast({_quoted(name)} as double)")
    return value, raw.isNotNull() & value.isNull()


def _time_column(frame: DataFrame, name: str, rank: int, where: str) -> tuple[Column, list[Column]]:
    """Unix seconds (double) from a numeric, timestamp, date or ISO 8601 text column."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    kind = frame.schema[name].dataType
    raw, quoted = _col(name), _quoted(name)
    problems = [_problem(rank, raw.isNull(), f"column {name!r} is empty")]
    if isinstance(kind, T.NumericType):
        seconds = raw.cast("double")
        bad = raw.isNotNull() & (F.isnan(seconds) | (F.abs(seconds) == float("inf")))
        text = "; expected a date/time or Unix seconds"
        problems.append(_problem(rank + 1, bad, f"column {name!r} has ", raw, text))
        return seconds, problems
    if isinstance(kind, (T.TimestampType, T.DateType)) or kind.typeName() == "timestamp_ntz":
        return F.expr(f"unix_seconds(cast({quoted} as timestamp))").cast("double"), problems
    if isinstance(kind, T.StringType):
        stamp = F.expr(f"try_cast({quoted} as timestamp)")
        bad = raw.isNotNull() & stamp.isNull()
        text = "'; expected a date/time such as 2025-03-01 14:30:00, or Unix seconds"
        problems.append(_problem(rank + 1, bad, f"column {name!r}: cannot read '", raw, text))
        return F.expr(f"unix_seconds(try_cast({quoted} as timestamp))").cast("double"), problems
    raise DataError(
        f"{where}: column {name!r} has type {kind.simpleString()}; expected dates or seconds"
    )


def as_paths(path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> tuple[str, ...]:
    paths = (path,) if isinstance(path, (str, os.PathLike)) else tuple(path)
    if not paths:
        raise ParameterError("no path given: name at least one CSV or Parquet file")
    return tuple(os.fspath(p) for p in paths)


def _numpy(table: Any, name: str) -> np.ndarray:
    """A collected column as numpy: text as unicode (ids), numbers as they are."""
    import pyarrow as pa

    column = table.column(name)
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        return np.asarray(column.to_pylist(), dtype=str)
    return column.to_numpy()


def _index_ids(
    frame: DataFrame, column: str, index: str
) -> tuple[DataFrame, np.ndarray, DataFrame]:
    """Each distinct id of ``column`` and its rank in sorted order, in Spark; the sorted ids on
    the driver; and the persisted frame behind the ranks (to unpersist once they are used).

    A distributed sort (no single partition): the driver learns each sorted partition's size
    while collecting the ids, and a partition's ranks start after the sizes before it.
    """
    from pyspark.sql import functions as F

    ordered = (
        frame.select(column)
        .distinct()
        .orderBy(column)
        .select(
            column,
            F.spark_partition_id().alias("_part"),
            F.monotonically_increasing_id().alias("_mono"),
        )
        .persist()
    )
    table = collect(ordered.select(column, "_part"))  # partition order: the sorted order
    ids, part = _numpy(table, column), table.column("_part").to_numpy()
    if ids.size > 1 and not np.all(ids[1:] > ids[:-1]):
        raise GrowthrecError(f"Spark returned the {column} ids out of order; please report this")
    parts, first = np.unique(part, return_index=True)
    offsets = F.create_map(
        *(F.lit(v) for pair in zip(parts.tolist(), first.tolist(), strict=True) for v in pair)
    )
    local = F.col("_mono") - F.shiftleft(F.col("_part").cast("long"), _PARTITION_SHIFT)
    ranks = ordered.select(column, (offsets[F.col("_part")] + local).alias(index))
    return ranks, ids, ordered


def _missing_columns(where: str, names: list[str], wanted: list[str]) -> None:
    absent = [c for c in dict.fromkeys(wanted) if c not in names]
    if absent:
        which = "column" if len(absent) == 1 else "columns"
        raise DataError(
            f"{where}: no {which} {', '.join(map(repr, absent))}; "
            f"the file has {', '.join(map(repr, names))}"
        )


def _parsed_rows(
    frame: DataFrame,
    columns: Columns,
    weight: str | None,
    stamp: str | None,
    cleaning: Cleaning,
    where: str,
) -> tuple[DataFrame, list[str], list[str]]:
    """Every row converted (ids, ``w`` weight, ``t`` seconds, ``x<n>`` extra columns), with
    ``rule``, the code of the first cleaning rule that drops it (null: kept), and ``problem``,
    the first thing in it that cannot be read (null: none). Also the columns that make a row a
    duplicate, and the rule names by code."""
    from pyspark.sql import functions as F

    positive = list(dict.fromkeys(cleaning.require_positive))
    # Every column converted first, with what cannot be read as a ranked problem.
    user, problems = _id_column(frame, columns.user, 0, where)
    item, item_problems = _id_column(frame, columns.item, 1, where)
    problems += item_problems
    selected = {"u": user, "i": item}
    if weight:
        value, unreadable = _number_column(frame, weight)
        problems += [
            _problem(10, _col(weight).isNull(), f"column {weight!r} is empty"),
            _problem(11, unreadable, f"column {weight!r}: cannot read '", _col(weight), "'"),
            _problem(
                12,
                F.isnan(value) | (F.abs(value) == float("inf")),
                f"column {weight!r} has ",
                value,
                "; weights must be finite",
            ),
        ]
        selected["w"] = value
    if stamp:
        seconds, time_problems = _time_column(frame, stamp, 20, where)
        problems += time_problems
        selected["t"] = seconds
    extras: dict[str, Column] = {}
    for n, name in enumerate(positive):
        value, unreadable = _number_column(frame, name)
        problems.append(
            _problem(30 + n, unreadable, f"column {name!r}: cannot read '", _col(name), "'")
        )
        extras[name] = value

    # The cleaning rules as the code of the first one that drops the row (null: kept).
    rules: list[tuple[str, Column]] = []
    missing = user.isNull() | item.isNull()
    if cleaning.drop_missing:
        rules.append(("missing user or item", missing))
    else:
        problems += [
            _problem(50, user.isNull(), f"column {columns.user!r} is empty"),
            _problem(51, item.isNull(), f"column {columns.item!r} is empty"),
        ]
    if weight:
        if cleaning.drop_nonpositive:
            rules.append(("non-positive weight", selected["w"] <= 0))
        else:
            text = "; weights must be finite and not negative"
            problems.append(
                _problem(60, selected["w"] < 0, f"column {weight!r} has ", selected["w"], text)
            )
    for name, value in extras.items():
        # Spark orders NaN above every number: "not > 0" must name it (numpy: NaN > 0 is False).
        positive_value = F.coalesce((value > 0) & ~F.isnan(value), F.lit(False))
        rules.append((f"non-positive {name}", ~positive_value))
    rule = F.lit(None).cast("int")
    for code in reversed(range(len(rules))):
        rule = F.when(rules[code][1], F.lit(code)).otherwise(rule)
    problem = F.lit(None)
    for candidate in reversed(problems):  # the first (lowest-ranked) problem of the row
        problem = F.coalesce(candidate, problem)

    keys = list(selected)
    extra_keys = [name for name in extras if name not in (weight, stamp)]
    parsed = frame.select(
        *(column.alias(key) for key, column in selected.items()),
        *(extras[name].alias(f"x{n}") for n, name in enumerate(extra_keys)),
        rule.alias("rule"),
        problem.alias("problem"),
    )
    keys += [f"x{n}" for n in range(len(extra_keys))]
    return parsed, keys, [name for name, _ in rules]


def load_pairs(
    spark: SparkSession,
    path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    columns: Columns | None = None,
    cleaning: Cleaning | None = None,
    *,
    file_format: str | None = None,
) -> SparkPairs:
    """Read transactions with Spark, clean them as ``load_events`` does, index the ids.

    ``path`` is one path or several (files, directories, globs, any URI the session can read);
    ``file_format`` is ``"csv"`` or ``"parquet"`` (default: from the names). The rules run in
    the order and with the names of ``load_events``; each one's count is in the report. Ids
    come back as written, by the rule of ``load_events``: a CSV id column is integers only when
    every id is a canonical int64 (or every one is such an integer followed by ``.0``), checked
    over the whole column inside Spark; else every id is its text.
    """
    from pyspark.sql import functions as F

    paths = as_paths(path)
    columns = Columns() if columns is None else columns
    cleaning = Cleaning() if cleaning is None else cleaning
    _check_cleaning(cleaning)
    kind = file_format_of(paths, file_format)
    where = ", ".join(paths)
    with _sql_conf(spark, LOAD_SQL_CONF), spark_errors(where):
        frame = _read(spark, paths, kind, text=(columns.user, columns.item))
        names = frame.columns
        weight = columns.weight or (
            DEFAULT_WEIGHT_COLUMN if DEFAULT_WEIGHT_COLUMN in names else None
        )
        stamp = columns.time or (DEFAULT_TIME_COLUMN if DEFAULT_TIME_COLUMN in names else None)
        if cleaning.min_weight is not None and weight is None:
            raise ParameterError(
                f"min_weight={cleaning.min_weight:g} needs a weight column: {where} has no "
                f"{DEFAULT_WEIGHT_COLUMN!r} column and none was named"
            )
        positive = list(dict.fromkeys(cleaning.require_positive))
        _missing_columns(
            where,
            names,
            [columns.user, columns.item, *(c for c in (weight, stamp) if c), *positive],
        )

        parsed, keys, rules = _parsed_rows(frame, columns, weight, stamp, cleaning, where)
        # One row per distinct cleaned row (n: how many times it occurs): duplicates fall out
        # of the grouping, and every count below is read from this, not from the files again.
        grouped = (
            parsed.groupBy(*keys, "rule")
            .agg(F.count(F.lit(1)).alias("n"), F.min("problem").alias("problem"))
            .persist()
        )
        persisted = [grouped]  # unpersisted once the pairs are collected, or on an error
        try:
            rows = F.lit(1) if cleaning.drop_duplicates else F.col("n")
            kept = F.col("rule").isNull()
            below = (
                F.lit(False) if cleaning.min_weight is None else F.col("w") < cleaning.min_weight
            )
            summary = grouped.agg(
                F.sum("n").alias("read"),
                *(
                    F.sum(F.when(F.col("rule") == code, F.col("n"))).alias(f"r{code}")
                    for code in range(len(rules))
                ),
                F.sum(F.when(kept, F.col("n") - 1)).alias("duplicates"),
                F.sum(F.when(kept & below, rows)).alias("below"),
                F.sum(F.when(kept, rows)).alias("kept"),
                F.min("problem").alias("problem"),
                *(check for key in ("u", "i") if kind == "csv" for check in _integer_checks(key)),
            ).first()
            if summary["problem"] is not None:
                raise DataError(f"{where}: {summary['problem']['text']}")
            rows_read = int(summary["read"] or 0)
            if rows_read == 0:
                raise DataError(f"{where}: the file has a header but no rows")
            dropped = {name: int(summary[f"r{code}"] or 0) for code, name in enumerate(rules)}
            if cleaning.drop_duplicates:
                dropped["duplicate rows"] = int(summary["duplicates"] or 0)
            if cleaning.min_weight is not None:
                dropped[f"below min weight {cleaning.min_weight:g}"] = int(summary["below"] or 0)
            remaining = int(summary["kept"] or 0) - int(summary["below"] or 0)

            sums = F.sum(F.col("w").cast("float").cast("double") * rows) if weight else F.sum(rows)
            # Text ids to integers only now, when the whole column is known (a one-to-one change:
            # the pairs group as the texts did).
            ids = [_id_values(key, summary) if kind == "csv" else key for key in ("u", "i")]
            pairs = (
                grouped.filter(kept & ~F.coalesce(below, F.lit(False)))
                .groupBy(*ids)
                .agg(
                    sums.alias("value"),
                    (F.max("t") if stamp else F.lit(None).cast("double")).alias("time"),
                    F.sum(rows).alias("rows"),
                )
            )
            min_user, min_item = cleaning.min_user_interactions, cleaning.min_item_interactions
            if min_user > 1 or min_item > 1:
                pairs = _k_core(pairs, min_user, min_item)
            user_ranks, user_ids, user_frame = _index_ids(pairs, "u", "user")
            persisted.append(user_frame)
            item_ranks, item_ids, item_frame = _index_ids(pairs, "i", "item")
            persisted.append(item_frame)
            indexed = (
                pairs.join(user_ranks, "u")
                .join(item_ranks, "i")
                .select(
                    F.col("u").alias("user_id"),
                    F.col("i").alias("item_id"),
                    F.col("user").cast("int"),
                    F.col("item").cast("int"),
                    "value",
                    "time",
                    "rows",
                )
                .persist()
            )
            table = collect(indexed.select("user", "item", "value", "time", "rows"))
        finally:
            for frame_done in persisted:
                frame_done.unpersist()
    rows_kept = int(table.column("rows").to_numpy().sum()) if table.num_rows else 0
    if min_user > 1 or min_item > 1:
        dropped[f"k-core (users >= {min_user}, items >= {min_item})"] = remaining - rows_kept
    if rows_kept == 0:
        indexed.unpersist()
        counts = ", ".join(f"{rule}: {count:,}" for rule, count in dropped.items() if count)
        raise DataError(f"{where}: no rows left after cleaning ({counts})")
    users, items = IdMap.from_ids(user_ids), IdMap.from_ids(item_ids)
    train = interactions_from_codes(
        table.column("user").to_numpy(),
        users,
        table.column("item").to_numpy(),
        items,
        table.column("value").to_numpy(),
        table.column("time").to_numpy() if stamp else None,
    )
    report = SparkLoadReport(
        paths=paths,
        file_format=kind,
        rows_read=rows_read,
        dropped=dropped,
        rows_kept=rows_kept,
        n_users=len(users),
        n_items=len(items),
        n_pairs=train.nnz,
        weight_column=weight,
        time_column=stamp,
    )
    return SparkPairs(indexed, train, report)


def _checkpoint(frame: DataFrame) -> DataFrame:
    """``frame`` computed and stored with its plan cut short: a reliable checkpoint when the
    context has a checkpoint directory, else a local one (on the executors).

    Iterating joins on a growing plan makes Spark's planning, not the data, the slow part
    (measured: 2-5 s per k-core round on a tiny file, under 1 s once checkpointed).
    """
    if frame.sparkSession.sparkContext.getCheckpointDir():
        return frame.checkpoint(eager=True)
    return frame.localCheckpoint(eager=True)


def _k_core(pairs: DataFrame, min_user: int, min_item: int) -> DataFrame:
    """Pairs of users with >= ``min_user`` items and items with >= ``min_item`` users, removing
    the others until nothing changes (as ``load_events``)."""
    from pyspark.sql import functions as F

    current = _checkpoint(pairs)
    size = current.count()
    while True:
        users = current.groupBy("u").count().filter(F.col("count") >= min_user).select("u")
        items = current.groupBy("i").count().filter(F.col("count") >= min_item).select("i")
        following = _checkpoint(current.join(users, "u", "left_semi").join(items, "i", "left_semi"))
        following_size = following.count()
        if following_size == size:
            return following
        current, size = following, following_size


def ratings_from_pairs(pairs: DataFrame, weighting: str) -> DataFrame:
    """ALS's input from ``load_pairs``'s pairs: (user, item, rating) with the weighting applied
    to each pair's summed weight (float32 first, as growthrec's matrix holds it)."""
    from pyspark.sql import functions as F

    value = F.col("value").cast("float")
    ratings = {"binary": F.lit(1.0), "count": value, "log1p": F.log1p(value)}
    if weighting not in ratings:
        raise ParameterError(
            f"weighting {weighting!r} is not available on Spark; choose one of {', '.join(ratings)}"
        )
    return pairs.filter(F.col("value") != 0).select(
        "user", "item", ratings[weighting].cast("float").alias("rating")
    )
