"""Flask glue for the platform databases: one session per tier per request, closed at teardown."""

from __future__ import annotations

from flask import Flask, current_app, g
from sqlalchemy.orm import Session

from api.tenancy.databases import Databases


def databases() -> Databases:
    """The app's Databases (settings, backend, main and master engines)."""
    return current_app.extensions["finvera"]


def main_session() -> Session:
    """The request's session on the main database, opened on first use."""
    if "main_session" not in g:
        g.main_session = Session(databases().main_engine)
    return g.main_session


def master_session() -> Session:
    """The request's session on the master database, opened on first use."""
    if "master_session" not in g:
        g.master_session = Session(databases().master_engine)
    return g.master_session


def close_sessions(_error: BaseException | None = None) -> None:
    """Roll back whatever a request left uncommitted and give the connections back."""
    for name in ("main_session", "master_session"):
        session = g.pop(name, None)
        if session is not None:
            session.close()


def init_app(app: Flask, dbs: Databases) -> None:
    app.extensions["finvera"] = dbs
    app.teardown_appcontext(close_sessions)
