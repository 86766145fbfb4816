"""The HTTP service: ``create_app(model_path)`` builds it, uvicorn runs it (``growthrec serve``).

No work happens at import time. The lifespan handler makes the ``ModelHolder`` (on
``app.state``), which loads the model in a thread and then watches the file; until the first
model has loaded and answered a smoke request, readiness says 503 and so do the model
endpoints, while liveness answers at once.
"""

from __future__ import annotations

import contextlib
import functools
import hmac
import os
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, HTTPException, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel
from threadpoolctl import threadpool_limits

from growthrec._version import __version__
from growthrec.errors import GrowthrecError
from growthrec.serving import answers
from growthrec.serving.holder import ModelHolder, ServedModel, small_pages_for_models
from growthrec.serving.metrics import VERSION_HEADER, MetricsMiddleware, ServiceMetrics
from growthrec.serving.schemas import (
    MAX_N,
    UNION_TAGS,
    BestSellers,
    CustomerRequest,
    Health,
    ListOptions,
    ModelDescription,
    NewCustomerRequest,
    RecommendationList,
    ReloadResult,
    SearchResult,
    SimilarItems,
    SimilarRequest,
)
from growthrec.serving.warmup import read_warm_lists, warm_up

__all__ = ["DEFAULT_WATCH_SECONDS", "app_from_environment", "create_app"]

STATIC = Path(__file__).parent / "static"
#: How often the model file is checked for a change (inode, size, mtime): one os.stat, so
#: often enough that the check adds ~50 ms on average to a swap, not the 100 ms of 0.2 s.
DEFAULT_WATCH_SECONDS = 0.1
#: Environment read by ``app_from_environment`` (how ``growthrec serve --workers N`` passes
#: its options to each worker process).
ENV_MODEL = "GROWTHREC_SERVE_MODEL"
ENV_STORE = "GROWTHREC_SERVE_STORE"
ENV_ADMIN_TOKEN = "GROWTHREC_ADMIN_TOKEN"
ENV_WATCH = "GROWTHREC_SERVE_WATCH_SECONDS"
ENV_WARM = "GROWTHREC_SERVE_WARM"

#: URL path -> the endpoint label of its metrics.
ENDPOINTS = {
    "/v1/recommendations": "recommendations",
    "/v1/recommendations/new-customer": "new_customer",
    "/v1/similar-items": "similar_items",
    "/v1/best-sellers": "best_sellers",
    "/v1/items/search": "item_search",
    "/v1/customers/search": "customer_search",
    "/v1/model": "model",
    "/v1/admin/reload": "admin_reload",
    "/livez": "livez",
    "/readyz": "readyz",
    "/metrics": "metrics",
    "/": "page",
}


class NotReady(Exception):
    """No model serves yet."""


def create_app(
    source: str | os.PathLike[str],
    *,
    store: bool = False,
    admin_token: str | None = None,
    watch_seconds: float = DEFAULT_WATCH_SECONDS,
    blas_threads: int | None = 1,
    warm: Sequence[ListOptions] = (),
) -> FastAPI:
    """The service for the model file ``source`` (with ``store``: the champion of the model
    store ``source``), watched every ``watch_seconds``. Every model loaded ranks its first
    customer under each of the list settings ``warm`` before it serves (``serving.warmup``).

    ``admin_token`` turns on the admin endpoints (a Bearer token); without it they do not
    exist. ``blas_threads`` caps BLAS in this process (one request's products are too small
    to split, and a worker per core should not oversubscribe); ``None`` leaves it.
    """
    path = Path(source)
    metrics = ServiceMetrics(ENDPOINTS)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if blas_threads is not None:
            threadpool_limits(blas_threads)
        small_pages_for_models()
        holder = ModelHolder(
            path,
            store=store,
            on_outcome=lambda outcome: metrics.record_outcome(outcome, holder.current),
            warm=functools.partial(warm_up, lists=tuple(warm)) if warm else None,
        )
        app.state.holder = holder
        holder.start(watch_seconds)
        try:
            yield
        finally:
            holder.stop()

    app = FastAPI(
        title="growthrec",
        version=__version__,
        summary="Product recommendations from purchase history, from one model file.",
        description=(
            "Every list answer carries `model_version` (and the `X-Model-Version` header): "
            "a fingerprint of the model file's content (the first 12 hex digits of SHA-256 "
            "over its archive members' names, sizes and CRC-32s). A customer the model does "
            'not know gets the best sellers, labelled `source: "fallback:popular"`. Errors '
            'are `{"detail": "<field>: <what is wrong>"}` with status 422 (a bad request) '
            "or 503 (no model loaded yet)."
        ),
        lifespan=lifespan,
    )
    app.state.metrics = metrics
    app.add_middleware(
        MetricsMiddleware,
        metrics=metrics,
        version=lambda: _version_now(app),
    )
    _add_error_handlers(app)
    _add_model_routes(app, metrics)
    _add_health_routes(app, metrics)
    if admin_token:
        _add_admin_routes(app, admin_token)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    return app


def app_from_environment() -> FastAPI:
    """``create_app`` with options from the environment (uvicorn's factory, one per worker)."""
    store = os.environ.get(ENV_STORE)
    warm = os.environ.get(ENV_WARM)
    return create_app(
        store or os.environ[ENV_MODEL],
        store=bool(store),
        admin_token=os.environ.get(ENV_ADMIN_TOKEN) or None,
        watch_seconds=float(os.environ.get(ENV_WATCH, DEFAULT_WATCH_SECONDS)),
        warm=read_warm_lists(Path(warm)) if warm else (),
    )


def _version_now(app: FastAPI) -> str | None:
    holder = getattr(app.state, "holder", None)
    served = holder.current if holder is not None else None
    return served.version if served is not None else None


async def _served(request: Request) -> ServedModel:
    """The serving model, read once: the whole answer comes from it."""
    served = request.app.state.holder.current
    if served is None:
        raise NotReady(request.app.state.holder.last_error)
    return served


Served = Annotated[ServedModel, Depends(_served)]
SearchText = Annotated[str, Query(max_length=200, description="Text the id contains.")]
SearchLimit = Annotated[int, Query(ge=1, le=MAX_N, description="Most ids to return.")]


def _versioned(response: Response, served: ServedModel) -> None:
    response.headers[VERSION_HEADER] = served.version


def _answer(value: BaseModel, served: ServedModel) -> Response:
    """The JSON answer, serialised once (FastAPI would validate it a second time), with the
    version header of the model that made it; absent fields (``null``) left out."""
    return Response(
        value.model_dump_json(exclude_none=True),
        media_type="application/json",
        headers={VERSION_HEADER: served.version},
    )


def _count(
    metrics: ServiceMetrics, endpoint: str, answer: dict[str, Any], fallback: str | None
) -> None:
    if fallback is not None:
        metrics.fallbacks.labels(endpoint, fallback).inc()
    if not answer["items"]:
        metrics.empty_lists.labels(endpoint).inc()


def _add_model_routes(app: FastAPI, metrics: ServiceMetrics) -> None:
    # The hot endpoints are coroutines: one answer is about a millisecond of CPU, and running
    # it on the event loop saves a hop through the thread pool (which adds no parallelism
    # under the GIL). The slower ones (fold-in, neighbours) run in the pool.
    @app.post("/v1/recommendations", tags=["recommendations"], response_model=RecommendationList)
    async def recommendations(body: CustomerRequest, served: Served) -> Response:
        """Top-`n` items for a customer the model was trained on (best sellers if unknown)."""
        answer, fallback = answers.customer_list(served, body)
        _count(metrics, "recommendations", answer, fallback)
        return _answer(RecommendationList.model_validate(answer), served)

    @app.post(
        "/v1/recommendations/new-customer",
        tags=["recommendations"],
        response_model=RecommendationList,
    )
    def new_customer(body: NewCustomerRequest, served: Served) -> Response:
        """Top-`n` items for a new customer from a basket and/or customer features."""
        answer, fallback = answers.new_customer_list(served, body)
        _count(metrics, "new_customer", answer, fallback)
        return _answer(RecommendationList.model_validate(answer), served)

    @app.post("/v1/similar-items", tags=["items"], response_model=SimilarItems)
    def similar(body: SimilarRequest, served: Served) -> Response:
        """The `n` items most like a given item, by the model's similarity."""
        answer = answers.similar_list(served, body.item, body.n)
        _count(metrics, "similar_items", answer, None)
        return _answer(SimilarItems.model_validate(answer), served)

    @app.get("/v1/best-sellers", tags=["items"], response_model=BestSellers)
    async def best_sellers(
        served: Served,
        n: Annotated[int, Query(ge=1, le=MAX_N, description="How many items.")] = 10,
    ) -> Response:
        """The items most training customers bought (the fallback list)."""
        return _answer(BestSellers.model_validate(answers.best_sellers(served, n)), served)

    @app.get("/v1/items/search", tags=["items"])
    def item_search(
        served: Served,
        response: Response,
        q: SearchText = "",
        limit: SearchLimit = 20,
    ) -> SearchResult:
        """Item ids containing `q` (best sellers first when `q` is empty)."""
        _versioned(response, served)
        return SearchResult.model_validate(answers.search(served, "items", q, limit))

    @app.get("/v1/customers/search", tags=["customers"])
    def customer_search(
        served: Served,
        response: Response,
        q: SearchText = "",
        limit: SearchLimit = 20,
    ) -> SearchResult:
        """Customer ids containing `q`."""
        _versioned(response, served)
        return SearchResult.model_validate(answers.search(served, "customers", q, limit))

    @app.get("/v1/model", tags=["model"])
    def model(served: Served, response: Response) -> ModelDescription:
        """The model being served: backend, parameters, version, sizes, file."""
        _versioned(response, served)
        return ModelDescription.model_validate(answers.describe(served))


def _add_health_routes(app: FastAPI, metrics: ServiceMetrics) -> None:
    @app.get("/livez", tags=["operations"])
    def livez() -> Health:
        """The process answers (whether or not a model is loaded)."""
        return Health(status="alive", model_version=_version_now(app))

    @app.get(
        "/readyz",
        tags=["operations"],
        responses={503: {"model": Health, "description": "No model serves yet."}},
    )
    def readyz() -> Any:
        """200 once a model has loaded and answered a smoke request, else 503."""
        holder = app.state.holder
        served = holder.current
        if served is None:
            reason = holder.last_error or "loading the model"
            body = Health(status="not ready", reason=reason)
            return JSONResponse(body.model_dump(), status_code=503)
        return Health(status="ready", model_version=served.version)

    @app.get("/metrics", tags=["operations"], response_class=PlainTextResponse)
    def prometheus() -> Response:
        """Prometheus metrics (text exposition format)."""
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)


def _add_admin_routes(app: FastAPI, token: str) -> None:
    def authorised(authorization: Annotated[str | None, Header()] = None) -> None:
        given = (authorization or "").removeprefix("Bearer ").strip()
        if not given or not hmac.compare_digest(given.encode(), token.encode()):
            raise HTTPException(
                401,
                "authorization: give the admin token as 'Authorization: Bearer TOKEN'",
                headers={"WWW-Authenticate": "Bearer"},
            )

    @app.post(
        "/v1/admin/reload",
        tags=["operations"],
        dependencies=[Depends(authorised)],
        responses={422: {"model": ReloadResult, "description": "The file was rejected."}},
    )
    def reload() -> Any:
        """Reload the model file now: checked beside the serving model, then swapped in."""
        holder: ModelHolder = app.state.holder
        outcome = holder.reload("admin")
        serving = holder.current
        body = ReloadResult(
            status=outcome.status,  # type: ignore[arg-type]
            model_version=serving.version if serving is not None else None,
            previous_version=outcome.previous_version,
            message=outcome.message,
        )
        if outcome.status == "failed":
            return JSONResponse(body.model_dump(), status_code=422)
        return body


def _field(location: tuple[Any, ...]) -> str:
    """``("body", "allow", 3)`` -> ``allow[3]``: the field as the client wrote it."""
    parts = [p for p in location if p not in ("body", "query", "header", "path", *UNION_TAGS)]
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or str(location[0] if location else "body")


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {
                "field": "body" if e["type"] == "json_invalid" else _field(tuple(e["loc"])),
                "message": e["msg"],
            }
            for e in exc.errors()
        ]
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        return JSONResponse({"detail": detail, "errors": errors}, status_code=422)

    @app.exception_handler(GrowthrecError)
    async def refused(request: Request, exc: GrowthrecError) -> JSONResponse:
        body: dict[str, Any] = {"detail": str(exc)}
        if isinstance(exc, answers.FieldError):  # the same shape as a validation error's
            message = str(exc).removeprefix(f"{exc.field}: ")
            body["errors"] = [{"field": exc.field, "message": message}]
        return JSONResponse(body, status_code=422)

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception) -> JSONResponse:
        # uvicorn logs the traceback; the client gets JSON like every other answer
        return JSONResponse({"detail": "internal error (see the server's log)"}, status_code=500)

    @app.exception_handler(NotReady)
    async def not_ready(request: Request, exc: NotReady) -> JSONResponse:
        why = f" ({exc.args[0]})" if exc.args and exc.args[0] else ""
        return JSONResponse(
            {"detail": f"no model is serving yet{why}; see /readyz"},
            status_code=503,
            headers={"Retry-After": "1"},
        )
