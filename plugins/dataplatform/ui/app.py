"""The operator's page as a FastAPI app (mounted by Airflow's API server at ``/dataplatform``).

Pages are server-rendered (Jinja2); every page needs an Airflow login, every action (a POST) also needs
the right to edit DAGs and the form's CSRF token. Nothing secret is rendered: messages are redacted and
dbconfig values masked.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from fastapi import FastAPI, Form, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from dataplatform.ui import actions, comparisons, queries
from dataplatform.ui.auth import NotLoggedIn, Operator, csrf_token, current_operator, login_url, require_editor
from include.control.model import CONFIG_FIELDS, DB_TYPES, FIELD_HELP, LOAD_STRATEGIES, REQUIRED_FIELDS
from include.control.repository import ControlRowNotFound
from include.dataloader.monitors.analysis import RuleAnalyzer
from include.dataloader.monitors.rest import TIMEOUT_SECONDS, AirflowRest
from include.dataloader.run_owner import CLI_RUN_PREFIX
from include.redact import redact

TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")
SECRET_NAME = re.compile(r"(?i)pass|pwd|secret|token|key$|credential")
REFUSALS = (ValueError, ControlRowNotFound)  # InvalidControlRow, Refused: the CLI's refusals
CONN_CACHE_SECONDS = 60


def masked(value: dict[str, Any] | None) -> dict[str, str]:
    """A dbconfig value with secret-looking names masked and URLs' passwords redacted."""
    return {k: actions.REDACTED if SECRET_NAME.search(k) else redact(str(v)) for k, v in (value or {}).items()}


def safe_link(url: str | None) -> str | None:
    return url if url and url.startswith(("http://", "https://", "/")) else None


TEMPLATES.env.filters["redact"] = lambda text: redact(str(text)) if text is not None else ""
TEMPLATES.env.filters["link"] = safe_link
TEMPLATES.env.filters["values"] = lambda values: redact(queries.as_text(values))


def airflow_control_url() -> Callable[[], str]:
    """The control database from the Airflow connection ``dataloader_control`` (looked up once a minute)."""
    cached: dict[str, Any] = {}

    def url() -> str:
        if cached.get("until", 0) < time.monotonic():
            from airflow.models.connection import Connection

            from dataplatform.hooks.control import ControlDatabaseHook, postgres_conninfo

            conn = Connection.get_connection_from_secrets(ControlDatabaseHook.default_conn_name)
            cached.update(url=postgres_conninfo(conn), until=time.monotonic() + CONN_CACHE_SECONDS)
        return cached["url"]

    return url


def airflow_base_url() -> str:
    """``[api] base_url``, its path included (``https://host/d1234abc``): the page calls Airflow's REST API there."""
    from airflow.configuration import conf

    return conf.get("api", "base_url", fallback="http://localhost:8080").rstrip("/")


def airflow_root(request: Request) -> str:
    """The path Airflow is served under (``/d1234abc``, or ``""``), as Airflow's own pages take it: the root
    path of the API server's app (from ``[api] base_url``), not of this app mounted in it. Links into Airflow
    start with it, so they stay on the host and under the prefix the browser uses."""
    return request.base_url.path.rstrip("/")


def create_app(
    control_url: Callable[[], str] | None = None,
    *,
    artifacts_root: Callable[[], str] = comparisons.artifacts_root,
    airflow_url: Callable[[], str] = airflow_base_url,
) -> FastAPI:
    """:param control_url: the control database's libpq URL (default: the ``dataloader_control`` connection).
    :param artifacts_root: DB Sentinel's artifacts root (default: ``$SENTINEL_ARTIFACTS_ROOT``).
    :param airflow_url: Airflow's API server, for triggering runs (links take the request's root path)."""
    app = FastAPI(title="DataLoader and DB Sentinel operator page", docs_url=None, redoc_url=None, openapi_url=None)
    db = control_url or airflow_control_url()

    @app.exception_handler(NotLoggedIn)
    async def to_login(request: Request, exc: NotLoggedIn) -> Response:
        if request.method == "GET":
            return RedirectResponse(login_url(request), status_code=303)
        return HTMLResponse("Not logged in: log in to Airflow first", status_code=401)

    @app.exception_handler(HTTPException)
    async def refused(request: Request, exc: HTTPException) -> Response:
        return TEMPLATES.TemplateResponse(
            request, "refused.html", {"status": exc.status_code, "detail": exc.detail}, status_code=exc.status_code
        )

    def page(request: Request, template: str, operator: Operator, status_code: int = 200, **context) -> Response:
        context = {
            "operator": operator,
            "csrf": csrf_token(operator) if operator.may_edit else "",
            "airflow": airflow_root(request),
            "message": request.query_params.get("done"),
            **context,
        }
        return TEMPLATES.TemplateResponse(request, template, context, status_code=status_code)

    def done(request: Request, route: str, message: str, **params) -> Response:
        target = request.url_for(route, **params).include_query_params(done=message)
        return RedirectResponse(str(target), status_code=303)

    # -- control rows -------------------------------------------------------------------------------

    @app.get("/", response_class=HTMLResponse, name="rows")
    async def rows(
        request: Request, status: str = "", source: str = "", strategy: str = "", page_number: int = 1
    ) -> Response:
        operator = await current_operator(request)
        flt = queries.RowFilter(status=status, source=source, strategy=strategy, page=max(page_number, 1))

        def render() -> Response:
            found, total = queries.control_rows(db(), flt)
            return page(
                request,
                "rows.html",
                operator,
                rows=found,
                total=total,
                flt=flt,
                pages=max(1, -(-total // queries.PAGE_SIZE)),
                statuses=queries.STATUSES,
                sources=queries.sources(db()),
                strategies=LOAD_STRATEGIES,
            )

        return await run_in_threadpool(render)

    def row_page(request: Request, operator: Operator, control_key: str, status_code=200, **context) -> Response:
        url = db()
        row = actions.repository(url, operator.name).require(control_key)
        analysis = None
        if row["last_status"] == "Failed":
            analysis = RuleAnalyzer().analyze(row["last_status_message"] or "")
        return page(
            request,
            "row.html",
            operator,
            status_code=status_code,
            row=row,
            runs=queries.recent_runs(url, control_key),
            changes=queries.recent_changes(url, control_key),
            recorded_analysis=queries.latest_analysis(url, control_key),
            analysis=analysis,
            fields=CONFIG_FIELDS,
            help=FIELD_HELP,
            form=context.pop("form", None) or {n: actions.field_text(row[n]) for n in CONFIG_FIELDS},
            may_edit_row=operator.may_edit_dag(control_key),
            run_link=_run_link(airflow_root(request), row),
            **context,
        )

    @app.get("/rows/{control_key}", response_class=HTMLResponse, name="row")
    async def row(request: Request, control_key: str) -> Response:
        operator = await current_operator(request)
        try:
            return await run_in_threadpool(row_page, request, operator, control_key)
        except ControlRowNotFound as exc:
            raise HTTPException(404, str(exc)) from None

    async def act(request: Request, control_key: str, csrf: str, action: Callable[[Operator], str]) -> Response:
        operator = await current_operator(request)
        require_editor(operator, csrf, control_key)
        try:
            message = await run_in_threadpool(action, operator)  # off the event loop: it may call the API
        except ControlRowNotFound as exc:
            raise HTTPException(404, str(exc)) from None
        except REFUSALS as exc:
            form = dict(await request.form())
            form.pop("csrf", None)
            return await run_in_threadpool(
                row_page, request, operator, control_key, 400, error=redact(str(exc)), form=form or None
            )
        return done(request, "row", message, control_key=control_key)

    @app.post("/rows/{control_key}/edit", name="edit_row")
    async def edit_row(request: Request, control_key: str, csrf: str = Form("")) -> Response:
        form = {k: str(v) for k, v in (await request.form()).items() if k in CONFIG_FIELDS}
        return await act(request, control_key, csrf, lambda op: actions.edit_row(db(), op.name, control_key, form))

    @app.post("/rows/{control_key}/reset", name="reset_row")
    async def reset_row(request: Request, control_key: str, csrf: str = Form("")) -> Response:
        return await act(request, control_key, csrf, lambda op: actions.reset(db(), op.name, control_key))

    @app.post("/rows/{control_key}/deactivate", name="deactivate_row")
    async def deactivate_row(request: Request, control_key: str, csrf: str = Form("")) -> Response:
        return await act(request, control_key, csrf, lambda op: actions.deactivate(db(), op.name, control_key))

    @app.post("/rows/{control_key}/trigger", name="trigger_row")
    async def trigger_row(request: Request, control_key: str, csrf: str = Form("")) -> Response:
        def trigger(op: Operator) -> str:
            headers = {"Authorization": f"Bearer {op.token}"}
            with httpx.Client(base_url=airflow_url(), headers=headers, timeout=TIMEOUT_SECONDS) as client:
                return actions.trigger(db(), control_key, AirflowRest(client))

        return await act(request, control_key, csrf, trigger)

    @app.get("/new", response_class=HTMLResponse, name="new_row")
    async def new_row(request: Request) -> Response:
        operator = await current_operator(request)
        return await run_in_threadpool(_new_page, request, operator, {})

    def _new_page(request: Request, operator: Operator, form: dict, status_code: int = 200, **context) -> Response:
        return page(
            request,
            "new.html",
            operator,
            status_code=status_code,
            fields=CONFIG_FIELDS,
            required=REQUIRED_FIELDS,
            help=FIELD_HELP,
            form=form,
            sources=queries.sources(db()),
            **context,
        )

    @app.post("/new", name="add_row")
    async def add_row(request: Request, csrf: str = Form("")) -> Response:
        operator = await current_operator(request)
        require_editor(operator, csrf)
        form = {k: str(v) for k, v in (await request.form()).items() if k in CONFIG_FIELDS}
        try:
            message = await run_in_threadpool(actions.add_row, db(), operator.name, form)
        except REFUSALS as exc:
            return await run_in_threadpool(_new_page, request, operator, form, 400, error=redact(str(exc)))
        return done(request, "row", message, control_key=form["control_key"].strip())

    # -- source database configs ------------------------------------------------------------------

    def _dbconfig_page(request: Request, operator: Operator, status_code: int = 200, **context) -> Response:
        configs = [{**c, "db_config_value": masked(c["db_config_value"])} for c in queries.dbconfigs(db())]
        return page(
            request, "dbconfigs.html", operator, status_code=status_code, configs=configs, db_types=DB_TYPES, **context
        )

    @app.get("/dbconfigs", response_class=HTMLResponse, name="dbconfigs")
    async def dbconfigs(request: Request) -> Response:
        return await run_in_threadpool(_dbconfig_page, request, await current_operator(request))

    @app.post("/dbconfigs", name="save_dbconfig")
    async def save_dbconfig(request: Request, csrf: str = Form("")) -> Response:
        operator = await current_operator(request)
        require_editor(operator, csrf)
        form = {k: str(v) for k, v in (await request.form()).items() if k != "csrf"}
        try:
            message = await run_in_threadpool(actions.save_dbconfig, db(), operator.name, form)
        except REFUSALS as exc:
            return await run_in_threadpool(_dbconfig_page, request, operator, 400, error=redact(str(exc)), form=form)
        return done(request, "dbconfigs", message)

    # -- DB Sentinel ------------------------------------------------------------------------------

    @app.get("/comparisons", response_class=HTMLResponse, name="comparisons")
    async def comparison_runs(request: Request) -> Response:
        operator = await current_operator(request)

        def render() -> Response:
            root_text = artifacts_root()
            root = comparisons.local_root(root_text)
            results = [
                {**r, "sql": comparisons.relative(root, ((r["details"] or {}).get("results") or {}).get("sql_file"))}
                for r in queries.sentinel_results(db())
            ]
            return page(
                request,
                "comparisons.html",
                operator,
                root=redact(root_text),
                local=root is not None,
                runs=comparisons.runs(root) if root else [],
                results=results,
                counts=comparisons.COUNTS,
            )

        return await run_in_threadpool(render)

    @app.get("/artifacts/{name:path}", name="artifact")
    async def artifact(request: Request, name: str) -> Response:
        await current_operator(request)
        try:
            path, media_type = comparisons.servable(comparisons.local_root(artifacts_root()), name)
        except comparisons.NotServed as exc:
            raise HTTPException(404, str(exc)) from None
        return FileResponse(path, media_type=media_type, filename=path.name)

    return app


def _run_link(airflow: str, row: dict) -> str | None:
    if row.get("airflow_run_url"):
        return row["airflow_run_url"]
    if row.get("current_run_id") and not row["current_run_id"].startswith(CLI_RUN_PREFIX):
        return f"{airflow}/dags/{quote(row['control_key'])}/runs/{quote(row['current_run_id'], safe='')}"
    return None
