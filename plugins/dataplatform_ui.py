"""The Airflow plugin of the operator's page (``dataplatform/ui``): mounts its app in the API server and
links it from the UI's navigation.

Airflow finds this file in its plugins folder: an Astro project's ``plugins/`` is that folder; the image and
the test tier copy this one file into theirs. It imports nothing of ``dataplatform`` until the API server
asks for the app: the scheduler, the dag-processor and the workers load plugins too, before a DAG file puts
its bundle's checkout on ``sys.path``, and an early import of the package would pin them to the image's copy.
"""

from __future__ import annotations

from functools import cached_property

from airflow.plugins_manager import AirflowPlugin

URL_PREFIX = "/dataplatform"
# Relative: the UI puts a view's href in its iframe as it is, and the UI's page has a <base href> of the path
# Airflow is served under ([api] base_url's, e.g. /d1234abc/ on Astro), so this finds the app with or without
# one; an absolute /dataplatform/ would leave a prefixed Airflow.
NAV_HREF = f"{URL_PREFIX.lstrip('/')}/"


class OperatorPagePlugin(AirflowPlugin):
    name = "dataplatform_operator_page"
    external_views = [
        {
            "name": "Data platform",
            "href": NAV_HREF,
            "destination": "nav",
            "url_route": "dataplatform",
        }
    ]

    @cached_property
    def fastapi_apps(self) -> list[dict]:
        from dataplatform.ui.app import create_app

        return [{"app": create_app(), "url_prefix": URL_PREFIX, "name": "DataLoader and DB Sentinel"}]
