"""The operator page's app on a TestClient, logged in through Airflow's own auth manager and JWTs."""

from __future__ import annotations

import re

import pytest

from tests.control.conftest import cli  # noqa: F401  (the dataloader command, to compare messages)

OPERATOR, VIEWER = "ops", "viewer"
AIRFLOW_URL = "http://127.0.0.1:9"  # nothing listens: the pages only link to it


@pytest.fixture(scope="session")
def auth_manager(airflow_db):
    """Airflow's SimpleAuthManager, as the API server initialises it (the JWT secret is the test's own)."""
    import os

    os.environ["AIRFLOW__API_AUTH__JWT_SECRET"] = "canary-ui-jwt-" + "0123456789abcdef" * 4  # HS512 wants 64 bytes
    os.environ["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS"] = "False"
    from airflow.api_fastapi.app import init_auth_manager

    return init_auth_manager()


def token(auth_manager, name: str, role: str) -> str:
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    return auth_manager.generate_jwt(SimpleAuthManagerUser(username=name, role=role))


class Browser:
    """A TestClient logged in as one user (the UI's ``_token`` cookie), with the page's CSRF token."""

    def __init__(self, client):
        self.client = client

    def get(self, path: str, **kw):
        return self.client.get(path, **kw)

    def csrf(self, path: str = "/") -> str:
        found = re.search(r'name="csrf" content="([0-9a-f]+)"', self.get(path).text)
        return found.group(1) if found else ""

    def post(self, path: str, data: dict | None = None, *, csrf: str | None = None, **kw):
        form = {"csrf": self.csrf() if csrf is None else csrf, **(data or {})}
        return self.client.post(path, data=form, follow_redirects=False, **kw)


@pytest.fixture(autouse=True)
def secrets_on_purpose(control_url):
    from tests import canary

    canary.database_by_design(control_url, "the page's tests write the canary into rows, to show no page shows it")


@pytest.fixture
def artifacts(tmp_path):
    root = tmp_path / "artifacts"
    root.mkdir()
    return root


@pytest.fixture
def ui(auth_manager, control_url, artifacts):
    """``ui(role)``: a Browser on the app as ``ops`` (role user: may edit DAGs) or ``viewer`` (read-only)."""
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from dataplatform.ui.app import create_app
    from dataplatform_ui import URL_PREFIX

    def app(root_path: str) -> FastAPI:
        # mounted at its prefix, as Airflow's API server mounts it; that app's root_path is [api] base_url's path
        outer = FastAPI(root_path=root_path)
        outer.mount(
            URL_PREFIX,
            create_app(lambda: control_url, artifacts_root=lambda: str(artifacts), airflow_url=lambda: AIRFLOW_URL),
        )
        return outer

    clients = []

    def login(role: str = "user", *, root_path: str = "") -> Browser:
        """:param root_path: the path Airflow is served under (``[api] base_url = http://host/airflow``)."""
        name = OPERATOR if role == "user" else VIEWER
        client = TestClient(app(root_path), base_url=f"http://testserver{root_path}{URL_PREFIX}")
        client.cookies.set("_token", token(auth_manager, name, role))
        clients.append(client)
        return Browser(client)

    yield login
    for client in clients:
        client.close()
