"""The plugin as Airflow loads it from a plugins folder holding only ``plugins/dataplatform_ui.py``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

from include.local.airflow_stack import PLUGIN_FILE
from tests.conftest import ROOT

LOAD = """
import json, sys
from airflow import plugins_manager
plugins, errors = plugins_manager._get_plugins()
loaded_package = "dataplatform" in sys.modules  # what a dag-processor or a worker has imported by now
apps, _ = plugins_manager.get_fastapi_plugins()
views, _ = plugins_manager._get_ui_plugins()
print(json.dumps({"plugins": [p.name for p in plugins], "errors": errors, "loaded_package": loaded_package,
                  "apps": [a["url_prefix"] for a in apps], "views": [v["href"] for v in views]}))
"""


def test_loading_the_plugin_imports_nothing_of_the_package_until_the_api_server_mounts_its_app(tmp_path):
    (tmp_path / "plugins").mkdir()
    shutil.copy2(ROOT / PLUGIN_FILE, tmp_path / PLUGIN_FILE)
    env = {
        **os.environ,
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(tmp_path / "plugins"),
        "PYTHONPATH": f"{ROOT}:{ROOT / 'plugins'}",
    }
    done = subprocess.run([sys.executable, "-c", LOAD], env=env, capture_output=True, text=True, check=True)
    loaded = json.loads(done.stdout.strip().splitlines()[-1])

    assert "dataplatform_operator_page" in loaded["plugins"]  # beside the providers' plugins
    assert loaded["errors"] == {}
    assert loaded["loaded_package"] is False
    assert "/dataplatform" in loaded["apps"]
    assert "dataplatform/" in loaded["views"]  # relative: under the base path of a prefixed Airflow
