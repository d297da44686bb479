"""The Airflow plugin: mounts the operator's page in the API server and links it from the UI's navigation.

Airflow finds it in its plugins folder: an Astro project's ``plugins/`` holds this file; the image and the
test tier put a one-line module importing it there (``PLUGIN_MODULE`` in ``include/local/airflow_stack.py``).
The app is built only when the API server asks for it: the scheduler, the workers and the dag-processor
also load plugins, and need no web app.
"""

from __future__ import annotations

from functools import cached_property

from airflow.plugins_manager import AirflowPlugin

URL_PREFIX = "/dataplatform"


class OperatorPagePlugin(AirflowPlugin):
    name = "dataplatform_operator_page"
    external_views = [
        {
            "name": "Data platform",
            "href": f"{URL_PREFIX}/",
            "destination": "nav",
            "url_route": "dataplatform",
        }
    ]

    @cached_property
    def fastapi_apps(self) -> list[dict]:
        from dataplatform.ui.app import create_app

        return [{"app": create_app(), "url_prefix": URL_PREFIX, "name": "DataLoader and DB Sentinel"}]
