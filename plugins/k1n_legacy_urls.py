"""Airflow plugin: the K1N project's old report URLs (`/k1n/…`) redirect to the
airflow-bottleneck plugin (`/bottlenecks/…`), path and query kept.

The report itself is the `airflow-bottleneck` distribution's plugin, which Airflow loads from
its entry point; this folder registers only what is K1N's own. Links people saved, the old run
tab's address and scripts calling `/k1n/api/…` keep working (307 keeps the method and body).
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from k1n.reporting.legacy_urls import LEGACY_URL_PREFIX, legacy_redirect_app


class K1NLegacyUrlsPlugin(AirflowPlugin):
    """`/k1n/<path>?<query>` -> `/bottlenecks/<path>?<query>`."""

    name = "k1n_legacy_urls"
    fastapi_apps = [
        {"app": legacy_redirect_app(), "url_prefix": LEGACY_URL_PREFIX, "name": "K1N report URLs"}
    ]
