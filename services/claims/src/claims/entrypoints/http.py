"""claims's HTTP API (its member-facing routes arrive with their issues)."""

from fastapi import APIRouter

router = APIRouter(prefix="/api/v1/claims", tags=["claims"])
