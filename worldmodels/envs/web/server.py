"""Serve a site on the loopback interface in a background thread (werkzeug's server)."""

from __future__ import annotations

import threading

from werkzeug.serving import WSGIRequestHandler, make_server

#: The only address the sites bind to: they are never reachable from another machine.
HOST = "127.0.0.1"


class _QuietHandler(WSGIRequestHandler):
    """Werkzeug's handler without the per-request access log line."""

    def log_request(self, *args, **kwargs) -> None:
        pass


class Server:
    """A running server: ``url`` (``http://127.0.0.1:<port>``), ``host``, ``port`` and
    :meth:`shutdown` (also on leaving a ``with`` block). Several may run at once."""

    def __init__(self, app, port: int = 0):
        if not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValueError(f"port must be an int in [0, 65535] (0 = any free port), got {port!r}")
        self._server = make_server(HOST, port, app, threaded=True,
                                   request_handler=_QuietHandler)
        self.host, self.port = self._server.server_address[:2]
        self.url = f"http://{self.host}:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name=f"web-site-{self.port}", daemon=True)
        self._thread.start()

    def shutdown(self, timeout: float = 5.0) -> None:
        """Stop serving, join the thread and close the socket (idempotent)."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout)
        self._server.server_close()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()


def serve(app, port: int = 0) -> Server:
    """Serve the WSGI ``app`` on 127.0.0.1:``port`` (0: a free port) in a daemon thread.

    Returns the :class:`Server`; its ``url`` is the base URL. Raises OSError when the port is
    taken, ValueError for a port outside [0, 65535].
    """
    return Server(app, port)
