"""Serving with gunicorn: the only place gunicorn is imported.

Each worker builds its own app (no preload), so no database connection crosses a fork.
Threads > 1 selects gunicorn's gthread worker, which also keeps client connections alive.
"""

from __future__ import annotations

from typing import Any

from gunicorn.app.base import BaseApplication

from dirsync.settings import Settings


def bind_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class _Gunicorn(BaseApplication):  # type: ignore[misc]
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        super().__init__()

    def load_config(self) -> None:
        s = self.settings
        options: dict[str, Any] = {
            "bind": [bind_address(s.server_host, s.server_port)],
            "workers": s.server_workers,
            "threads": s.server_threads,
            "worker_class": "gthread" if s.server_threads > 1 else "sync",
            # Full syncs of large directories stream for many seconds.
            "timeout": 600,
            "graceful_timeout": 30,
            "keepalive": 75,
            "loglevel": s.log_level.lower(),
            "proc_name": "dirsync",
            # gunicorn >= 23 opens a control socket at one fixed path per user; a second
            # instance on the machine (a replica, the tests) would fight over it.
            "control_socket_disable": True,
        }
        for key, value in options.items():
            if key in self.cfg.settings:  # older gunicorn lacks some settings
                self.cfg.set(key, value)

    def load(self) -> Any:
        # Runs in each worker after the fork, so the scheduler's threads live in the worker.
        from dirsync import scheduler
        from dirsync.app import create_app

        app = create_app(self.settings)
        scheduler.start(self.settings, app.extensions["dirsync"].store, first_run_in=60)
        return app


def serve(settings: Settings) -> None:
    _Gunicorn(settings).run()
