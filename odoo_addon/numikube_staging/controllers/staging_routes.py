# Copyright 2024-today Numigi and all its contributors (https://bit.ly/numigiens)
# License LGPL-3.0 or later (http://www.gnu.org/licenses/lgpl).
"""Staging side: the routes of docs/contract.md "More staging routes", each handing
the body's token and one value to the sidecar method of the same name, like
``/web/staging/run``. A production that gets 404 knows the staging is older."""

from odoo import http
from odoo.http import request

from ..models.staging_client import (
    BACKUPS_PATH,
    CANCEL_PATH,
    EXTEND_PATH,
    LIST_PATH,
    STATUS_PATH,
)
from . import sidecar


def forward(method, key):
    """Call the sidecar's ``method`` with ``[token, <body's key>]``. The token
    is not checked here: the sidecar knows the staging's token and the
    clients' own (``numikube_staging_client_tokens``)."""
    data = request.get_json_data()
    return sidecar.call(method, [data.get("token"), data.get(key)])


class StagingRoutes(http.Controller):
    """Served without a database, as ``/web/staging/run`` (see staging_run)."""

    @http.route(LIST_PATH, type="json", auth="none", csrf=False, methods=["POST"])
    def staging_list(self, **_kwargs):
        return forward("staging_list", "client")

    @http.route(STATUS_PATH, type="json", auth="none", csrf=False, methods=["POST"])
    def staging_status(self, **_kwargs):
        return forward("staging_status", "job_id")

    @http.route(BACKUPS_PATH, type="json", auth="none", csrf=False, methods=["POST"])
    def staging_backups(self, **_kwargs):
        return forward("staging_backups", "client")

    @http.route(CANCEL_PATH, type="json", auth="none", csrf=False, methods=["POST"])
    def staging_cancel(self, **_kwargs):
        return forward("staging_cancel", "job_id")

    @http.route(EXTEND_PATH, type="json", auth="none", csrf=False, methods=["POST"])
    def staging_extend(self, **_kwargs):
        return forward("staging_extend", "db_name")
