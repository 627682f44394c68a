# Copyright 2024-today Numigi and all its contributors (https://bit.ly/numigiens)
# License LGPL-3.0 or later (http://www.gnu.org/licenses/lgpl).
"""Production's client of a staging Odoo: the one place for the staging
routes' paths (docs/contract.md "Wire protocol" and "More staging routes", also
served by this module's controllers on the staging) and the one way to call
them and read their answer."""

import logging

import requests

from odoo.exceptions import UserError

_logger = logging.getLogger(__name__)

RUN_PATH = "/web/staging/run"
# Routes of docs/contract.md "More staging routes": an older staging answers 404.
LIST_PATH = "/web/staging/list"
STATUS_PATH = "/web/staging/status"
BACKUPS_PATH = "/web/staging/backups"
CANCEL_PATH = "/web/staging/cancel"
EXTEND_PATH = "/web/staging/extend"
STAGING_PATHS = (
    RUN_PATH,
    LIST_PATH,
    STATUS_PATH,
    BACKUPS_PATH,
    CANCEL_PATH,
    EXTEND_PATH,
)

# Seconds to wait for the staging server (connect, then each read), unless the
# system parameter numikube_staging.timeout says otherwise.
DEFAULT_TIMEOUT = 60
# Seconds to wait at most for what a form asks by itself (the progress of a
# running job every few seconds, the databases and backups when it opens): a
# slow staging must not keep the user's requests waiting.
QUICK_TIMEOUT = 10
# How much of an unexpected answer is kept (a job's traceback).
MAX_DETAIL = 4000


class StagingError(UserError):
    """The staging could not be asked, or refused: the message is for the
    user; ``detail`` is what a job keeps as its technical details."""

    def __init__(self, message, detail=""):
        super().__init__(message)
        self.detail = detail or ""


class StagingRouteMissing(StagingError):
    """The staging answered 404 to one of the newer routes: it is older and
    does not offer that feature. Callers keep the older behaviour."""


class StagingClient:
    """Calls the routes of one staging environment."""

    def __init__(self, environment, timeout=None):
        environment.ensure_one()
        self.environment = environment
        self.env = environment.env
        self.timeout = timeout or environment._get_timeout()

    def _older_staging_message(self, path):
        messages = {
            LIST_PATH: self.env._("This staging is older and does not list its databases."),
            STATUS_PATH: self.env._(
                "This staging is older and does not report the progress of "
                "its jobs: you will get an e-mail when the job ends."
            ),
            BACKUPS_PATH: self.env._(
                "This staging is older and does not offer a choice of backup: "
                "it restores the newest one."
            ),
            CANCEL_PATH: self.env._("This staging is older and does not offer cancelling a job."),
            EXTEND_PATH: self.env._(
                "This staging is older and does not offer keeping a database longer."
            ),
        }
        return messages.get(path, self.env._("This staging is older and does not offer %s.", path))

    def call(self, path, body):
        """POST ``body`` to ``path`` (the environment's token is added unless
        the body has one) and return the ``result`` of the Odoo JSON-RPC answer.

        Raises StagingRouteMissing when a newer route answers 404 (an older
        staging), else StagingError, whose message is for the user."""
        url = self.environment._get_url(path)
        body = {"token": self.environment.sudo().token or "", **body}
        try:
            response = requests.post(url, json=body, timeout=self.timeout)
        except requests.Timeout as err:
            raise StagingError(
                self.env._(
                    "The staging server %(url)s did not answer in time. "
                    "Try again later or open a ticket.",
                    url=url,
                ),
                str(err),
            ) from err
        except requests.RequestException as err:
            raise StagingError(
                self.env._(
                    "The staging server %(url)s could not be reached. "
                    "Check the environment's URL or try again later.",
                    url=url,
                ),
                str(err),
            ) from err
        if response.status_code == 404 and path != RUN_PATH:
            raise StagingRouteMissing(self._older_staging_message(path))
        if response.status_code != 200:
            raise StagingError(
                self.env._(
                    "The staging server answered with HTTP error %(code)s %(reason)s.",
                    code=response.status_code,
                    reason=response.reason or "",
                ),
                response.text[:MAX_DETAIL],
            )
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict) or not ("result" in data or "error" in data):
            raise StagingError(
                self.env._(
                    "The staging server gave an answer that is not a JSON-RPC "
                    "response. Is the environment's URL that of a staging Odoo?"
                ),
                response.text[:MAX_DETAIL],
            )
        error = data.get("error")
        if error:
            error = error if isinstance(error, dict) else {"message": str(error)}
            detail = error.get("data") if isinstance(error.get("data"), dict) else {}
            raise StagingError(
                detail.get("message")
                or error.get("message")
                or self.env._("The staging server refused the request."),
                (detail.get("debug") or "").replace("\\n", "\n"),
            )
        return data.get("result")
