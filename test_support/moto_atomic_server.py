"""moto's server with S3's conditional writes made atomic, as they are on S3.

moto checks a PutObject's If-Match or If-None-Match, then writes, with nothing in between to keep
another request's write out: two threads that both saw one version can both "win". S3 does not
allow that, and the customer lock and version numbers rely on it. So every write request (PUT,
POST, DELETE) runs alone; reads run alongside. Otherwise this is moto's own server.

    python -m test_support.moto_atomic_server HOST PORT
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple

WRITES = {"PUT", "POST", "DELETE"}


class OneWriteAtATime:
    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self._app = app
        self._writing = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if environ.get("REQUEST_METHOD") not in WRITES:
            return self._app(environ, start_response)
        with self._writing:
            return list(self._app(environ, start_response))


def main(host: str, port: str) -> None:
    os.environ.setdefault("MOTO_PORT", port)
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(
        host, int(port), OneWriteAtATime(app), threaded=True, request_handler=MotoRequestHandler
    )


if __name__ == "__main__":
    main(*sys.argv[1:])
