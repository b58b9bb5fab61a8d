"""Liveness and readiness probes for load balancers and orchestrators."""

from __future__ import annotations

from flask_openapi3 import APIBlueprint, Tag
from pydantic import BaseModel
from sqlalchemy.exc import SQLAlchemyError

from api.db import databases
from api.errors import COMMON_RESPONSES, ErrorEnvelope
from api.responses import failure, ok
from api.tenancy.migrations import pending_ids

tag = Tag(name="health", description="Probes")
bp = APIBlueprint("health", __name__, abp_tags=[tag], abp_responses=COMMON_RESPONSES)


class Up(BaseModel):
    status: str


class UpEnvelope(BaseModel):
    success: bool
    data: Up


class TierReady(BaseModel):
    name: str
    status: str


class Readiness(BaseModel):
    master_db: TierReady
    main_db: TierReady


class ReadinessEnvelope(BaseModel):
    success: bool
    data: Readiness


@bp.get("/healthz", responses={200: UpEnvelope})
def healthz():
    """The process is up."""
    return ok(status="up")


@bp.get("/readyz", responses={200: ReadinessEnvelope, 503: ErrorEnvelope})
def readyz():
    """Main and master are reachable and fully migrated; 503 naming the failing part otherwise."""
    problems, report = {}, {}
    for tier, (name, engine) in databases().tiers().items():
        part = f"{tier}_db"
        try:
            pending = pending_ids(engine, tier)
        except SQLAlchemyError as exc:
            problems[part] = f"{name} is unreachable: {type(exc.orig or exc).__name__}"
            continue
        if pending:
            problems[part] = f"{name} has {len(pending)} pending migrations: {', '.join(pending)}"
        else:
            report[part] = {"name": name, "status": "ready"}
    if problems:
        return failure(503, "not_ready", "A platform database is not ready.", problems)
    return ok(**report)
