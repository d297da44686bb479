"""Who is asking, and may they act: Airflow's own login (the UI's JWT cookie or a bearer token) and its
auth manager's answer to "may this user edit DAGs" (``is_authorized_dag(method="PUT")``).

Forms carry a CSRF token: an HMAC of the user's name under the API's JWT secret, so that another site
cannot make a logged-in operator's browser post an action.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from functools import cache

from airflow.api_fastapi.app import get_auth_manager
from airflow.api_fastapi.auth.managers.base_auth_manager import COOKIE_NAME_JWT_TOKEN
from airflow.api_fastapi.auth.managers.models.resource_details import DagDetails
from airflow.api_fastapi.core_api.security import resolve_user_from_token
from airflow.configuration import conf
from fastapi import HTTPException, Request, status


@dataclass(frozen=True)
class Operator:
    """The logged-in user as the page sees them."""

    name: str
    # the caller's own JWT: actions through Airflow's REST API run with the caller's rights
    token: str = field(default="", repr=False)
    may_edit: bool = False
    user: object = field(default=None, repr=False)

    def may_edit_dag(self, dag_id: str) -> bool:
        return self.may_edit and get_auth_manager().is_authorized_dag(
            method="PUT", user=self.user, details=DagDetails(id=dag_id)
        )


class NotLoggedIn(Exception):
    """No valid Airflow login on the request: the page sends the browser to Airflow's login page."""


def request_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.cookies.get(COOKIE_NAME_JWT_TOKEN)


async def current_operator(request: Request) -> Operator:
    token = request_token(request)
    if not token:
        raise NotLoggedIn()
    try:
        user = await resolve_user_from_token(token)
    except HTTPException as exc:
        raise NotLoggedIn() from exc
    may_edit = get_auth_manager().is_authorized_dag(method="PUT", user=user)
    return Operator(name=user.get_name(), token=token, may_edit=may_edit, user=user)


def login_url(request: Request) -> str:
    return get_auth_manager().get_url_login(next_url=str(request.url))


@cache
def _csrf_key() -> bytes:
    secret = conf.get("api_auth", "jwt_secret", fallback="") or secrets.token_hex(32)
    return hashlib.sha256(b"dataplatform-ui-csrf:" + secret.encode()).digest()


def csrf_token(operator: Operator) -> str:
    return hmac.new(_csrf_key(), operator.name.encode(), hashlib.sha256).hexdigest()


def require_editor(operator: Operator, csrf: str | None, dag_id: str | None = None) -> None:
    """Refuse (403) a user Airflow does not allow to edit DAGs (this row's DAG when given), or a form
    without this user's CSRF token."""
    allowed = operator.may_edit_dag(dag_id) if dag_id else operator.may_edit
    if not allowed:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"{operator.name} may not change the loader: Airflow allows only users who may edit DAGs",
        )
    if not csrf or not hmac.compare_digest(csrf, csrf_token(operator)):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "the form is stale or from another site: reload the page")
