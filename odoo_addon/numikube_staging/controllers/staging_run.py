# Copyright 2024-today Numigi and all its contributors (https://bit.ly/numigiens)
# License LGPL-3.0 or later (http://www.gnu.org/licenses/lgpl).

import odoo
from odoo import http
from odoo.http import request

from ..models.staging_client import RUN_PATH, STAGING_PATHS
from . import sidecar


class StagingRun(http.Controller):
    """Staging side: hand production's run payload to the sidecar.

    ``auth="none"`` and no use of the database: the module is loaded as a
    server-wide module, and the route must answer on a server with no
    database at all. The sidecar checks the token (the staging's or a
    client's own): it is forwarded as it came, never compared here."""

    @http.route(RUN_PATH, type="json", auth="none", csrf=False, methods=["POST"])
    def staging_run(self, **_kwargs):
        # Odoo's JSON dispatcher has already refused a body that is not an
        # object; the payload goes to the sidecar as it came.
        return sidecar.call("staging_run", [request.get_json_data()])


# When the staging server has a single database (or a dbfilter picks one),
# Odoo would serve the routes inside that database, holding a connection to
# it for the whole request, and a Drop Databases job naming that database
# would then fail: the sidecar terminates the connection, and Odoo fails the
# answer after the drop. The route needs no database, so serve it without
# one; that is possible only where the module is server-wide, which is the
# only place its route is in Odoo's routing map for requests without one.
_get_session_and_dbname = http.Request._get_session_and_dbname


def _get_session_and_dbname_for_staging_run(self):
    session, dbname = _get_session_and_dbname(self)
    if (
        # Every staging route: none needs a database.
        self.httprequest.path in STAGING_PATHS
        and "numikube_staging" in odoo.conf.server_wide_modules
    ):
        dbname = None
    return session, dbname


http.Request._get_session_and_dbname = _get_session_and_dbname_for_staging_run
