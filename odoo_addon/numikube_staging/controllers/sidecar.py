# Copyright 2024-today Numigi and all its contributors (https://bit.ly/numigiens)
# License LGPL-3.0 or later (http://www.gnu.org/licenses/lgpl).
"""JSON-RPC 2.0 client of the numikube-staging sidecar (docs/contract.md "Sidecar
JSON-RPC API"), used by the staging route. No database needed: it reads only
odoo.conf."""

import itertools

import requests

from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tools import config
from odoo.tools.translate import LazyTranslate

# No database, so no user language: fall back to English without a warning.
_lt = LazyTranslate(__name__, default_lang="en_US")

DEFAULT_ADDRESS = "127.0.0.1:8075"
# Seconds (connect, then each read). staging_run answers a prod2x at once, but
# a dropdb only once it is done.
TIMEOUT = 300

# Error codes of the sidecar (rpc/ crate) that have their own Odoo exception;
# any other code becomes a UserError with the sidecar's sentence.
BAD_TOKEN = -32041
INVALID_INPUT = -32042
EXCEPTIONS = {BAD_TOKEN: AccessError, INVALID_INPUT: ValidationError}

_ids = itertools.count(1)


class SidecarError(Exception):
    """The sidecar's own error, chained under the Odoo exception so that its
    code and detail reach production in ``error.data.debug``."""

    def __init__(self, code, message, data=None):
        super().__init__(f"code {code}: {message}" + (f"\n{data}" if data else ""))
        self.code = code


def sidecar_url():
    address = (config.get("numikube_staging_sidecar") or DEFAULT_ADDRESS).strip()
    if "://" not in address:
        address = f"http://{address}"
    return address.rstrip("/") + "/"


def call(method, params):
    """Call ``method`` with ``params`` and return its result, or raise the Odoo
    exception whose message is the sentence the sidecar wrote for the user."""
    body = {"jsonrpc": "2.0", "id": next(_ids), "method": method, "params": params}
    try:
        response = requests.post(sidecar_url(), json=body, timeout=TIMEOUT)
    except requests.ConnectionError as err:
        raise UserError(
            str(_lt("The staging service is not running on this server."))
        ) from err
    except requests.Timeout as err:
        raise UserError(
            str(_lt("The staging service did not answer in time. Try again later."))
        ) from err
    try:
        answer = response.json()
    except ValueError:
        answer = None
    if not isinstance(answer, dict) or not ("result" in answer or "error" in answer):
        raise UserError(
            str(_lt("The staging service gave an answer that is not JSON-RPC."))
        ) from SidecarError(None, f"HTTP {response.status_code}", response.text[:4000])
    error = answer.get("error")
    if error:
        if not isinstance(error, dict):
            error = {"message": str(error)}
        code = error.get("code")
        message = error.get("message") or str(_lt("The staging service failed."))
        raise EXCEPTIONS.get(code, UserError)(message) from SidecarError(
            code, message, error.get("data")
        )
    return answer["result"]
