"""Request body limits: a small one for every form and API call, a larger one for uploads.

Waitress refuses a body over the upload limit before the app sees it (it buffers bodies to
a temporary file, never in memory); the app refuses one over the form limit before
reading it, unless its view is marked with `upload`, where Werkzeug streams file parts to
disk.
"""

from collections.abc import Callable

from flask import Flask, current_app, request
from werkzeug.exceptions import RequestEntityTooLarge

MiB = 1024 * 1024


def upload(view: Callable) -> Callable:
    """Mark a view that takes a file upload: its body may be up to MAX_UPLOAD_MB."""
    view.upload = True
    return view


def body_bytes(cfg) -> int:
    return int(cfg["MAX_BODY_MB"] * MiB)


def upload_bytes(cfg) -> int:
    return int(cfg["MAX_UPLOAD_MB"] * MiB)


def wire(app: Flask) -> None:
    """Apply the limits; call before anything else reads the request (CSRF does)."""
    app.config.update(MAX_CONTENT_LENGTH=body_bytes(app.config),
                      MAX_FORM_MEMORY_SIZE=body_bytes(app.config))

    @app.before_request
    def larger_for_uploads():
        view = app.view_functions.get(request.endpoint or "")
        if getattr(view, "upload", False):
            request.max_content_length = upload_bytes(app.config)


def message(_exc: RequestEntityTooLarge) -> str:
    """Say which limit the request broke and which setting raises it."""
    cfg = current_app.config
    if request.max_content_length == upload_bytes(cfg):
        return (f"The upload is larger than {cfg['MAX_UPLOAD_MB']:g} MiB, the most this "
                "appliance accepts (APPLIANCE_MAX_UPLOAD_MB)")
    return (f"The request body is larger than {cfg['MAX_BODY_MB']:g} MiB, the most a form "
            "or API call may send (APPLIANCE_MAX_BODY_MB)")
