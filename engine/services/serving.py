"""Serving a registered model over HTTP: the production version of a name answers predictions
behind the name's own token, with a rate limit and a request log.

What this is for: the registry's "production" stage. A served name always answers from the
version in production *at that request*: each request reads the serving row and the production
version in one query (db/serving.py `target`), and the loaded predictor is cached per
(name, version), so promoting another version switches the answers at the very next request and
nothing needs restarting.

Choices, written down:
- **The token** is per model, `slm_` + secrets.token_urlsafe(32) (256 random bits); only its
  SHA-256 is stored (a random token needs no slow hash) and it is shown once, when made. A
  user's API token (`sl_…`, the SDK's) or a share link's token is not a model token: 401.
- **Turning serving on** needs a production version (else a sentence says to promote one). It
  keeps the name's existing token unless a new one is asked for (`rotate_token`, or
  `enable(new_token=True)`); turning it off keeps the token for when it comes back on.
- **Order of checks** for a request: a name not served (or turned off) → 404; a missing or wrong
  token → 401; nothing in production → 404; over the rate limit → 429 with Retry-After; then the
  input (413 over MAX_ITEMS items, 422 naming the missing column or the bad image). Only requests
  that pass the token check count toward the limit, so guessing tokens spends nobody's budget.
- **The rate limit** is per model token (`limits`' moving window in memory,
  SEEDLAB_SERVE_RATE_PER_MIN): each server process counts its own requests, so the dashboard and
  a `seedlab models serve` process each allow that many. A new token starts a new count.
- **The request log** (serve_requests) holds every request to a served name with its status,
  latency, item count, client address and error sentence; db/writes/serving.py keeps the
  newest 10,000 per model. Requests to names that are not served are not logged (anyone could
  fill the table with made-up names).
- **Prediction** is the Playground's own `engine.ml.predictor.Predictor` (encode → outputs);
  images arrive as base64 and are decoded by `engine.ml.image_input.read_image`, as an upload is.
  A predictor runs one request at a time (a lock per loaded model), as in the Playground.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import math
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import numpy as np
from limits import RateLimitItemPerMinute
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from sqlalchemy import Engine

from db import registry
from db import serving as serving_store
from db.serving import ServedModel, ServeRequest, ServeTarget
from db.writes import serving as serving_writes
from engine.core.errors import SeedlabError
from engine.core.run_files import checkpoint_path
from engine.core.settings import Settings
from engine.services import audit
from engine.services.api_tokens import TOKEN_PREFIX as USER_TOKEN_PREFIX
from engine.services.api_tokens import hash_token
from engine.services.model_registry import find_model
from engine.services.permissions import Actor, Permission, check

if TYPE_CHECKING:  # torch comes with the predictor: imported when a model is first loaded
    from engine.ml.predictor import Predictor

TOKEN_PREFIX = "slm_"
# Items (rows, texts or images) one request may carry; more is a 413 saying to split it.
MAX_ITEMS = 1_000
# A request body's size cap (base64 images make the biggest ones).
MAX_BODY_BYTES = 16 * 1024 * 1024
# Loaded predictors kept per process (one per served name's production version, mostly).
CACHE_SIZE = 8
# The latency figures (p50/p95) are over this many newest successful requests.
LATENCY_WINDOW = 1_000
API_PATH = "/api/v1/models"
INPUT_KEYS = {"tabular": "rows", "text": "texts", "image": "images"}


class ServeError(SeedlabError):
    """A request refused with an HTTP status and one sentence. `served` is False for a name
    that is not served (such requests are not logged)."""

    def __init__(
        self,
        message: str,
        status: int,
        *,
        headers: dict[str, str] | None = None,
        served: bool = True,
        version: int | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers or {}
        self.served = served
        self.version = version


# ---------------------------------------------------------------- turning serving on and off


def _new_token() -> tuple[str, str, str]:
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    return token, hash_token(token), token[:10]


def enable(db: Engine, actor: Actor, name: str, *, new_token: bool = False) -> str | None:
    """Serve `name`'s production version over HTTP. Returns the new token (the only time it is
    readable) when one was made: the first time, or with `new_token`; None when the name keeps
    the token it had."""
    check(actor, Permission.SERVE, what=f"model {name}")
    model = find_model(db, name)
    if model.production is None:
        raise SeedlabError(
            f"{model.name!r} has no version in production, so there is nothing to serve. "
            f"Promote a version first (seedlab models promote {model.name} VERSION production, "
            "or on the Models page)."
        )
    existing = serving_store.get_served(db, model.name)
    token: str | None = None
    token_hash = prefix = None
    if existing is None or new_token:
        token, token_hash, prefix = _new_token()
    serving_writes.upsert_served(
        db, model.name, token_hash=token_hash, token_prefix=prefix, actor=actor.name
    )
    audit.record(
        db,
        actor,
        "serve_on",
        f"model {model.name}",
        f"v{model.production.version}" + (" (new token)" if token else ""),
    )
    return token


def disable(db: Engine, actor: Actor, name: str) -> None:
    """Stop serving `name` (its requests get 404 at once); the token is kept for `enable`."""
    check(actor, Permission.SERVE, what=f"model {name}")
    if not serving_writes.set_enabled(db, name.strip(), False):
        raise SeedlabError(f"{name.strip()!r} is not served, so there is nothing to turn off.")
    audit.record(db, actor, "serve_off", f"model {name.strip()}")


def rotate_token(db: Engine, actor: Actor, name: str) -> str:
    """A new token for a served name; the old one stops working at the next request."""
    check(actor, Permission.SERVE, what=f"model {name}")
    token, token_hash, prefix = _new_token()
    if not serving_writes.set_token(db, name.strip(), token_hash=token_hash, token_prefix=prefix):
        raise SeedlabError(
            f"{name.strip()!r} is not served yet: turn serving on first, which makes its token."
        )
    audit.record(db, actor, "serve_token", f"model {name.strip()}", f"{prefix}…")
    return token


def served(db: Engine, name: str) -> ServedModel | None:
    return serving_store.get_served(db, name.strip())


def check_token(db: Engine, name: str, token: str | None) -> bool:
    """Whether `token` is `name`'s model token and the name is served."""
    target = serving_store.target(db, name.strip())
    return target is not None and target.enabled and _token_matches(target, token)


def _token_matches(target: ServeTarget, token: str | None) -> bool:
    if not token or not token.startswith(TOKEN_PREFIX):
        return False
    return hmac.compare_digest(hash_token(token), target.token_hash)


# ---------------------------------------------------------------- what the page and CLI show


def endpoint(base_url: str, name: str) -> str:
    """The predict URL of `name` on a server at `base_url` (http://host:port or the public URL)."""
    return f"{base_url.rstrip('/')}{API_PATH}/{quote(name, safe='')}/predict"


def curl_example(url: str, body: str, token: str = "$SEEDLAB_MODEL_TOKEN") -> str:
    return (
        f"curl -X POST '{url}' \\\n"
        f"  -H 'Authorization: Bearer {token}' \\\n"
        "  -H 'Content-Type: application/json' \\\n"
        f"  -d '{body}'"
    )


@dataclass(frozen=True)
class Latency:
    requests: int  # in the log
    answered: int  # with 200, among the newest LATENCY_WINDOW
    p50_ms: float | None
    p95_ms: float | None


def recent_requests(db: Engine, name: str, limit: int = 100) -> list[ServeRequest]:
    return serving_store.recent_requests(db, name.strip(), limit)


def latency(db: Engine, name: str) -> Latency:
    """Request count and p50/p95 latency of the newest successful requests."""
    name = name.strip()
    recent = serving_store.recent_requests(db, name, LATENCY_WINDOW)
    ok = np.array([r.latency_ms for r in recent if r.status == 200], dtype=np.float64)
    p50, p95 = (float(np.percentile(ok, q)) for q in (50, 95)) if len(ok) else (None, None)
    return Latency(serving_store.request_count(db, name), len(ok), p50, p95)


def example_for_run(settings: Settings, run_id: int) -> dict[str, Any]:
    """A request body a version made from `run_id` takes (the page's curl example)."""
    from engine.ml.predictor import Predictor

    return example_body(Predictor.load(checkpoint_path(settings, run_id)))


# ---------------------------------------------------------------- answering requests


@dataclass
class _Loaded:
    predictor: Predictor
    lock: threading.Lock = field(default_factory=threading.Lock)


class ModelServer:
    """Answers requests for served models in one process: the HTTP routes (dashboard/
    serve_api.py) hold one. `only` limits it to some names (`seedlab models serve NAME` serves
    that name alone)."""

    def __init__(
        self,
        settings: Settings,
        db: Engine,
        *,
        rate_per_min: int | None = None,
        only: set[str] | None = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self.only = only
        self.rate = RateLimitItemPerMinute(rate_per_min or settings.serve_rate_per_min)
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._cache: OrderedDict[tuple[str, int, int], _Loaded] = OrderedDict()
        self._cache_lock = threading.Lock()

    # --- the checks -------------------------------------------------------------------
    def authorize(self, name: str, token: str | None, *, count: bool = True) -> ServeTarget:
        """The target of a request with `token`, or ServeError (404, 401, 429). `count`: the
        request counts toward the rate limit (predictions do; describing the model does not)."""
        target = serving_store.target(self.db, name)
        if target is None or not target.enabled or (self.only and name not in self.only):
            raise ServeError(
                f"No model {name!r} is served here: turn serving on for it on the Models page "
                f"or with `seedlab models serve {name}`.",
                404,
                served=False,
            )
        if not token:
            raise ServeError(
                "This model needs its token: send `Authorization: Bearer <model token>` (the "
                "token shown when serving was turned on; rotate it on the Models page if lost).",
                401,
            )
        if not _token_matches(target, token):
            if token.startswith(USER_TOKEN_PREFIX) and not token.startswith(TOKEN_PREFIX):
                why = "this is a user's API token (for the SDK), not the model's token"
            else:
                why = "this token is not the model's token (it was mistyped or rotated)"
            raise ServeError(
                f"Refused: {why}. Send the model token shown when serving was turned on, or "
                "rotate it on the Models page to get a new one.",
                401,
            )
        if target.version is None or target.run_id is None:
            raise ServeError(
                f"{name!r} has no version in production right now, so it cannot answer. Promote "
                f"a version (seedlab models promote {name} VERSION production).",
                404,
            )
        if count and not self._limiter.hit(self.rate, name, target.token_hash):
            reset = self._limiter.get_window_stats(self.rate, name, target.token_hash).reset_time
            wait = max(1, math.ceil(reset - time.time()))
            raise ServeError(
                f"Too many requests: this model token may make {self.rate.amount} per minute "
                f"(SEEDLAB_SERVE_RATE_PER_MIN on the server). Try again in {wait} s.",
                429,
                headers={"Retry-After": str(wait)},
                version=target.version,
            )
        return target

    # --- the model ----------------------------------------------------------------------
    def loaded(self, target: ServeTarget) -> _Loaded:
        """The target version's predictor, loaded once per (name, version) and kept (LRU)."""
        from engine.ml.predictor import Predictor, PredictorError

        assert target.version is not None and target.run_id is not None
        key = (target.name, target.version, target.run_id)
        with self._cache_lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return hit
            try:
                loaded = _Loaded(Predictor.load(checkpoint_path(self.settings, target.run_id)))
            except PredictorError as exc:
                raise ServeError(
                    f"{target.name} v{target.version} cannot be loaded: {exc}",
                    503,
                    version=target.version,
                ) from None
            self._cache[key] = loaded
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
            return loaded

    def example(self, name: str) -> dict[str, Any] | None:
        """A body `name`'s production version takes (for the curl example); None when none."""
        target = serving_store.target(self.db, name)
        if target is None or target.version is None:
            return None
        return example_body(self.loaded(target).predictor)

    def describe(self, name: str, token: str | None) -> dict[str, Any]:
        """What the served version takes and gives (GET /api/v1/models/{name})."""
        target = self.authorize(name, token, count=False)
        predictor = self.loaded(target).predictor
        return {
            "model": target.name,
            "version": target.version,
            "kind": predictor.kind,
            "task": predictor.task,
            "send": INPUT_KEYS[predictor.kind],
            "inputs": describe_inputs(predictor),
            "labels": predictor.classes,
            "max_items": MAX_ITEMS,
            "example": example_body(predictor),
        }

    def answer(self, target: ServeTarget, payload: Any) -> dict[str, Any]:  # noqa: ANN401
        """Predictions for a request's JSON body (ServeError 413/422 for a bad one)."""
        from engine.ml.predictor import PredictorError

        loaded = self.loaded(target)
        predictor = loaded.predictor
        inputs, _ = parse_inputs(predictor, payload, version=target.version)
        try:
            with loaded.lock:
                values = predictor.outputs(predictor.encode(inputs))
        except PredictorError as exc:
            raise ServeError(str(exc), 422, version=target.version) from None
        body: dict[str, Any] = {"model": target.name, "version": target.version}
        if predictor.task == "classification":
            classes = predictor.classes
            body["predictions"] = [classes[i] for i in values.argmax(axis=1)]
            body["probabilities"] = [
                {c: round(float(p), 6) for c, p in zip(classes, row, strict=True)} for row in values
            ]
        else:
            body["predictions"] = [float(v) for v in values]
        return body

    def predict(
        self,
        name: str,
        token: str | None,
        payload: Any,  # noqa: ANN401 - a request's parsed JSON
        client: str = "in-process",
    ) -> dict[str, Any]:
        """A whole request in this process: checks, predictions, the log entry. Returns the
        answer with `latency_ms`; raises ServeError (logged too when the name is served)."""
        started = time.perf_counter()
        try:
            target = self.authorize(name, token)
            body = self.answer(target, payload)
        except ServeError as exc:
            if exc.served:
                self.log(name, exc.version, exc.status, started, count_items(payload), client, exc)
            raise
        body["latency_ms"] = elapsed_ms(started)
        self.log(name, target.version, 200, started, count_items(payload), client)
        return body

    def log(
        self,
        name: str,
        version: int | None,
        status: int,
        started: float,
        items: int,
        client: str,
        error: Exception | None = None,
        *,
        latency_ms: float | None = None,
    ) -> None:
        serving_writes.log_request(
            self.db,
            name,
            version=version,
            status=status,
            latency_ms=latency_ms if latency_ms is not None else elapsed_ms(started),
            items=items,
            client=client,
            error=None if error is None else str(error)[:500],
        )


def elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)


def count_items(payload: Any) -> int:  # noqa: ANN401
    if isinstance(payload, dict):
        for key in ("rows", "texts", "images"):
            if isinstance(payload.get(key), list):
                return len(payload[key])
    return 0


# ---------------------------------------------------------------- request bodies


def _example_value(spec: Any) -> Any:  # noqa: ANN401 - a column spec and a JSON value
    from engine.ml.prep.dates import DateSpec
    from engine.ml.prep.tabular import CategoricalSpec, NumericSpec

    if isinstance(spec, NumericSpec):
        value = round(spec.median, 4)
        return int(value) if spec.integer else value
    if isinstance(spec, CategoricalSpec):
        return spec.categories[0] if spec.categories else None
    if isinstance(spec, DateSpec):
        return spec.fill.replace("T00:00:00", "")
    return "some text"


def _table_specs(predictor: Predictor) -> list[Any]:
    pre = predictor.preprocessor
    return [*pre.numeric, *pre.categorical, *pre.dates, *pre.words]  # type: ignore[union-attr]


def example_body(predictor: Predictor) -> dict[str, Any]:
    """A request body the model takes: one row of typical training values, a text, an image."""
    if predictor.kind == "tabular":
        return {"rows": [{s.name: _example_value(s) for s in _table_specs(predictor)}]}
    if predictor.kind == "text":
        return {"texts": ["a text for the model to read"]}
    return {"images": ["<base64 of a PNG or JPEG file>"]}


def describe_inputs(predictor: Predictor) -> dict[str, Any]:
    from engine.ml.prep.dates import DateSpec
    from engine.ml.prep.tabular import CategoricalSpec, NumericSpec

    if predictor.kind == "tabular":
        columns = []
        for spec in _table_specs(predictor):
            if isinstance(spec, NumericSpec):
                column = {"name": spec.name, "type": "number", "typical": _example_value(spec)}
            elif isinstance(spec, CategoricalSpec):
                column = {"name": spec.name, "type": "category", "categories": spec.categories}
            elif isinstance(spec, DateSpec):
                column = {"name": spec.name, "type": "date", "typical": _example_value(spec)}
            else:
                column = {"name": spec.name, "type": "text"}
            columns.append(column)
        return {"columns": columns}
    if predictor.kind == "text":
        return {"text_column": predictor.preprocessor.text_column}  # type: ignore[union-attr]
    pre = predictor.preprocessor
    return {"image_size": pre.image_size, "channels": pre.channels}  # type: ignore[union-attr]


def parse_inputs(
    predictor: Predictor,
    payload: Any,  # noqa: ANN401 - parsed JSON
    *,
    version: int | None = None,
) -> tuple[Any, int]:  # noqa: ANN401
    """A request body as the predictor's input (a DataFrame, texts or PIL images) and its item
    count; ServeError 422 naming what is wrong, 413 over MAX_ITEMS."""
    import pandas as pd

    from engine.ml.image_input import read_image
    from engine.ml.predictor import PredictorError

    def bad(message: str, status: int = 422) -> ServeError:
        return ServeError(message, status, version=version)

    key = INPUT_KEYS[predictor.kind]
    example = f'{{"{key}": [...]}}'
    if not isinstance(payload, dict):
        raise bad(f"The body must be a JSON object such as {example}.")
    values = payload.get(key)
    if values is None:
        what = {"rows": "table rows", "texts": "texts", "images": "images"}[key]
        raise bad(f"This model reads {what}: send {example}; the body has no {key!r}.")
    if not isinstance(values, list) or not values:
        raise bad(f"{key!r} must be a non-empty list, as in {example}.")
    if len(values) > MAX_ITEMS:
        raise bad(
            f"{len(values):,} {key} in one request; at most {MAX_ITEMS:,} are taken. Send them in "
            "several requests.",
            413,
        )
    if key == "rows":
        needed = predictor.input_columns
        for i, row in enumerate(values):
            if not isinstance(row, dict):
                raise bad(f"rows[{i}] is not an object of column: value pairs.")
            missing = [c for c in needed if c not in row]
            if missing:
                raise bad(
                    f"rows[{i}] has no column {missing[0]!r}"
                    + (f" (nor {', '.join(map(repr, missing[1:4]))})" if len(missing) > 1 else "")
                    + f"; the model needs {', '.join(needed)}. Send null for a missing value."
                )
            nested = next((c for c in needed if isinstance(row[c], dict | list)), None)
            if nested is not None:
                raise bad(f"rows[{i}][{nested!r}] must be a number, a text or null, not a list.")
        return pd.DataFrame(values, columns=needed), len(values)
    if key == "texts":
        for i, text in enumerate(values):
            if not isinstance(text, str):
                raise bad(f"texts[{i}] is not a string; send each text as a JSON string.")
        return values, len(values)
    images = []
    for i, encoded in enumerate(values):
        if not isinstance(encoded, str):
            raise bad(f"images[{i}] is not a string: send each image file as base64 text.")
        data = encoded.split(",", 1)[1] if encoded.startswith("data:") else encoded
        try:
            raw = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise bad(
                f"images[{i}] is not valid base64: encode the PNG or JPEG file's bytes "
                "(e.g. `base64 -w0 photo.png`)."
            ) from None
        try:
            images.append(read_image(raw, name=f"images[{i}]"))
        except PredictorError as exc:
            raise bad(str(exc)) from None
    return images, len(images)


def production_label(db: Engine, name: str) -> str | None:
    """`name vN` of the production version, or None."""
    version = registry.production_version(db, name.strip())
    return None if version is None else version.label
