"""The directory of health professionals: public routes (no token; the gateway rate-limits them
per client IP). Routes translate the query into a search; the search and its refusals are in
service_layer/providers_search.py."""

from __future__ import annotations

from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel

from claims.entrypoints import NamesDep, PoolDep
from claims.service_layer import providers_search
from shared.platform.app import json_answer
from shared.platform.problems import problem_responses

router = APIRouter(prefix="/api/v1/claims", tags=["directory"])


POSTCODE = r"^[0-9]{5}$"
DEPARTMENT = r"^(0[1-9]|[1-8][0-9]|9[0-5]|2[ABab]|97[1-6])$"
CURSOR = r"^[A-Za-z0-9_-]+$"


class Specialty(BaseModel):
    code: str
    label: str


class Address(BaseModel):
    street: str
    postcode: str
    city: str
    department: str


class Sector(BaseModel):
    code: int | None
    label: str


class Optam(BaseModel):
    member: bool
    label: str


class Provider(BaseModel):
    id: str
    name: str
    civility: str | None
    last_name: str | None
    first_name: str | None
    organisation: str | None
    specialty: Specialty
    address: Address
    phone: str | None
    conventioned: bool
    sector: Sector
    optam: Optam
    practice: str | None
    distance_km: float | None = None


class ProvidersPage(BaseModel):
    items: list[Provider]
    next_cursor: str | None
    order: str


class SpecialtyCount(BaseModel):
    code: str
    label: str
    providers: int


class Specialties(BaseModel):
    items: list[SpecialtyCount]


@router.get(
    "/providers",
    summary="Search the directory of conventioned health professionals (public)",
    description=(
        "Par nom (`q`, sans tenir compte des accents ni de la casse, tolérant aux fautes de frappe), spécialité "
        "(code ou libellé), code postal, commune, département, secteur, OPTAM ; `near` (un code postal) trie par "
        "distance. Pages par curseur (`next_cursor`), dans un ordre stable."
    ),
    responses=problem_responses(422),
    response_model=ProvidersPage,
)
async def search_providers(
    pool: PoolDep,
    names: NamesDep,
    q: Annotated[str | None, Query(min_length=2, max_length=100, description="Nom ou raison sociale")] = None,
    specialty: Annotated[str | None, Query(min_length=1, max_length=80, description="Code (01, 19…) ou libellé (dentiste, cardiologie…)")] = None,
    postcode: Annotated[str | None, Query(pattern=POSTCODE, description="Code postal du cabinet")] = None,
    city: Annotated[str | None, Query(min_length=1, max_length=80, description="Commune du cabinet")] = None,
    department: Annotated[str | None, Query(pattern=DEPARTMENT, description="Département (01…95, 2A, 2B, 971…976)")] = None,
    sector: Annotated[int | None, Query(ge=1, le=3, description="Secteur conventionnel : 1, 2 ou 3")] = None,
    optam: Annotated[bool | None, Query(description="Adhérent à l'OPTAM")] = None,
    near: Annotated[str | None, Query(pattern=POSTCODE, description="Code postal : résultats du plus proche au plus loin")] = None,
    cursor: Annotated[str | None, Query(max_length=600, pattern=CURSOR)] = None,
    limit: Annotated[int, Query(ge=1, le=50)] = 20,
) -> Response:
    search = providers_search.Search(q, specialty, postcode, city, department, sector, optam, near)
    async with pool.acquire() as conn:
        return json_answer(await providers_search.search(conn, search, cursor, limit, names))


@router.get("/specialties", summary="The directory's specialties with their codes (public)", response_model=Specialties)
async def list_specialties(pool: PoolDep) -> Response:
    async with pool.acquire() as conn:
        return json_answer({"items": await providers_search.specialties(conn)})
