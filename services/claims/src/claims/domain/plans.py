"""Plans and their guarantees, as versioned data: one TOML file per plan and year, shipped with
claims (`claims/plans/<CODE>-<YEAR>.toml`) and validated at load. A bad file is refused with its
line and the reason, so a typo never reaches a member's reimbursement.

Money in the files is a string ("100.00"): a TOML float would be a float.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from importlib.resources import files
from importlib.resources.abc import Traversable

from claims.domain.money import euros_fr, parse_euros


class Formula(StrEnum):
    PCT_BR = "pct_br"  # x % of the Sécu base, Sécu included
    FORFAIT = "forfait"  # € per period (the ceiling is the amount)
    PER_SESSION = "per_session"  # € per session, with an optional count per period
    REAL_COSTS = "real_costs"  # frais réels (forfait journalier…)
    HUNDRED_PCT_SANTE = "100ps"  # 100 % Santé basket: no out of pocket


class Period(StrEnum):
    CALENDAR_YEAR = "calendar_year"
    ROLLING_24_MONTHS = "rolling_24_months"
    ROLLING_48_MONTHS = "rolling_48_months"


class Optam(StrEnum):
    ANY = "any"
    OPTAM = "optam"  # OPTAM (or OPTAM-CO) or secteur 1: no uncontrolled fee excess
    NON_OPTAM = "non_optam"


CATEGORIES = {
    "soins_courants": "Soins courants",
    "pharmacie": "Pharmacie",
    "hospitalisation": "Hospitalisation",
    "optique": "Optique",
    "dentaire": "Dentaire",
    "audiologie": "Aides auditives",
    "medecines_douces": "Médecines douces",
}

PERIOD_WORDS = {
    Period.CALENDAR_YEAR: "par année civile",
    Period.ROLLING_24_MONTHS: "tous les 2 ans",
    Period.ROLLING_48_MONTHS: "tous les 4 ans",
}

# Contrat responsable limits the loader checks (domain note §2.1).
MAX_FRAME_CENTS = 10_000
FRAME_POSTS = re.compile(r"MONTURE")


@dataclass(frozen=True)
class CeilingGroup:
    """A ceiling shared by several guarantee lines (an optical pair: frame + lenses)."""

    name: str
    label: str
    ceiling_cents: int
    period: Period
    renewal: int | None = None  # at most this many pieces of equipment (care dates) per period


@dataclass(frozen=True)
class Guarantee:
    post: str
    category: str
    label: str
    acts: tuple[str, ...]  # exact codes, or prefixes ending with "*"
    formula: Formula
    rate_pct: int | None = None
    amount_cents: int | None = None  # forfait: the amount per period; per_session: per session
    sessions: int | None = None  # per_session: sessions per period
    ceiling_cents: int | None = None
    period: Period | None = None
    optam: Optam = Optam.ANY
    group: str | None = None

    @property
    def limited(self) -> bool:
        return self.ceiling_cents is not None or self.sessions is not None or self.group is not None

    def own_ceiling(self) -> int | None:
        if self.formula is Formula.FORFAIT:
            return self.amount_cents
        return self.ceiling_cents

    def words(self) -> str:
        """The guarantee as a member reads it: "200 % de la base de remboursement"."""
        period = PERIOD_WORDS[self.period] if self.period else ""
        if self.formula is Formula.PCT_BR:
            text = f"{self.rate_pct} % de la base de remboursement"
        elif self.formula is Formula.FORFAIT:
            text = f"{euros_fr(self.amount_cents or 0)} {period}".strip()
        elif self.formula is Formula.PER_SESSION:
            text = f"{euros_fr(self.amount_cents or 0)} par séance"
            if self.sessions:
                text += f", {self.sessions} séance{'s' if self.sessions > 1 else ''} {period}"
        elif self.formula is Formula.REAL_COSTS:
            text = "frais réels"
        else:
            text = "100 % Santé : sans reste à charge"
        if self.ceiling_cents is not None and self.formula is not Formula.FORFAIT:
            text += f", dans la limite de {euros_fr(self.ceiling_cents)} {period}".rstrip()
        if self.optam is Optam.OPTAM:
            text += " (médecin OPTAM ou secteur 1)"
        elif self.optam is Optam.NON_OPTAM:
            text += " (médecin non adhérent OPTAM)"
        return text

    def matches(self, act_code: str) -> int:
        """How specifically this line names the act: 0 no, higher is more specific."""
        best = 0
        for pattern in self.acts:
            if pattern.endswith("*"):
                if act_code.startswith(pattern[:-1]):
                    best = max(best, len(pattern))
            elif act_code == pattern:
                best = max(best, 1000)
        return best

    def accepts(self, optam_level: bool) -> bool:
        return self.optam is Optam.ANY or (self.optam is Optam.OPTAM) == optam_level


@dataclass(frozen=True)
class Plan:
    code: str
    year: int
    label: str
    responsable: bool
    guarantees: tuple[Guarantee, ...]
    groups: dict[str, CeilingGroup] = field(default_factory=dict)

    def guarantee_for(self, act_code: str, optam_level: bool) -> Guarantee | None:
        best: tuple[int, Guarantee] | None = None
        for g in self.guarantees:
            score = g.matches(act_code)
            if score and g.accepts(optam_level) and (best is None or score > best[0]):
                best = (score, g)
        return best[1] if best else None

    def by_post(self, post: str) -> Guarantee | None:
        return next((g for g in self.guarantees if g.post == post), None)


class PlanFileError(ValueError):
    def __init__(self, source: str, line: int | None, reason: str) -> None:
        self.source, self.line, self.reason = source, line, reason
        super().__init__(f"{source}:{line or '?'}: {reason}")


def _table_lines(text: str, header: str) -> list[int]:
    """Line numbers of each `[[header]]` table, in order (tomllib gives no positions)."""
    pattern = re.compile(rf"^\s*\[\[\s*{re.escape(header)}\s*\]\]")
    return [i for i, line in enumerate(text.splitlines(), start=1) if pattern.match(line)]


def _money(value: object, what: str) -> int:
    if not isinstance(value, str):
        raise ValueError(f"{what} doit être un montant entre guillemets, par exemple \"100.00\"")
    try:
        return parse_euros(value)
    except ValueError as exc:
        raise ValueError(f"{what} : {exc}") from exc


def _int(value: object, what: str, *, minimum: int = 0) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{what} doit être un entier ≥ {minimum}")
    return value


def _enum(cls, value: object, what: str):
    try:
        return cls(value)
    except ValueError:
        raise ValueError(f"{what} inconnu : {value!r} (attendu : {', '.join(m.value for m in cls)})") from None


_GROUP_KEYS = {"name", "label", "ceiling", "period", "renewal"}
_GUARANTEE_KEYS = {"category", "post", "label", "acts", "formula", "rate", "amount", "sessions", "ceiling", "period",
                   "optam", "group"}


def parse_plan(text: str, source: str = "<plan>") -> Plan:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = re.search(r"line (\d+)", str(exc))
        raise PlanFileError(source, int(line.group(1)) if line else None, f"TOML invalide : {exc}") from None
    try:
        code = data["code"]
        year = _int(data["year"], "year", minimum=2000)
        label = data["label"]
    except KeyError as exc:
        raise PlanFileError(source, 1, f"clé obligatoire manquante : {exc.args[0]}") from None
    if not isinstance(code, str) or not re.fullmatch(r"[A-Z][A-Z0-9_]{1,31}", code):
        raise PlanFileError(source, 1, "code doit être en majuscules (ESSENTIEL, CONFORT…)")
    responsable = bool(data.get("responsable", True))

    groups: dict[str, CeilingGroup] = {}
    for line, raw in zip(_table_lines(text, "group"), data.get("group", []), strict=False):
        try:
            unknown = set(raw) - _GROUP_KEYS
            if unknown:
                raise ValueError(f"clé inconnue : {', '.join(sorted(unknown))}")
            group = CeilingGroup(
                name=raw["name"], label=raw["label"], ceiling_cents=_money(raw["ceiling"], "ceiling"),
                period=_enum(Period, raw["period"], "period"),
                renewal=_int(raw["renewal"], "renewal", minimum=1) if "renewal" in raw else None,
            )
            if group.name in groups:
                raise ValueError(f"groupe en double : {group.name}")
            groups[group.name] = group
        except KeyError as exc:
            raise PlanFileError(source, line, f"clé obligatoire manquante : {exc.args[0]}") from None
        except ValueError as exc:
            raise PlanFileError(source, line, str(exc)) from None

    guarantees: list[Guarantee] = []
    raws = data.get("guarantee", [])
    lines = _table_lines(text, "guarantee")
    if not raws:
        raise PlanFileError(source, 1, "aucune garantie ([[guarantee]])")
    for line, raw in zip(lines, raws, strict=False):
        try:
            guarantees.append(_guarantee(raw, groups, responsable))
        except KeyError as exc:
            raise PlanFileError(source, line, f"clé obligatoire manquante : {exc.args[0]}") from None
        except ValueError as exc:
            raise PlanFileError(source, line, str(exc)) from None
    _check_plan(guarantees, lines, source, responsable)
    return Plan(code=code, year=year, label=label, responsable=responsable, guarantees=tuple(guarantees), groups=groups)


def _guarantee(raw: dict, groups: dict[str, CeilingGroup], responsable: bool) -> Guarantee:
    unknown = set(raw) - _GUARANTEE_KEYS
    if unknown:
        raise ValueError(f"clé inconnue : {', '.join(sorted(unknown))}")
    category = raw["category"]
    if category not in CATEGORIES:
        raise ValueError(f"catégorie inconnue : {category!r} (attendu : {', '.join(CATEGORIES)})")
    acts = raw["acts"]
    if not isinstance(acts, list) or not acts or not all(isinstance(a, str) and a.strip("*") for a in acts):
        raise ValueError("acts doit être une liste non vide de codes d'actes")
    formula = _enum(Formula, raw["formula"], "formula")
    period = _enum(Period, raw["period"], "period") if "period" in raw else None
    g = Guarantee(
        post=raw["post"], category=category, label=raw["label"], acts=tuple(acts), formula=formula,
        rate_pct=_int(raw["rate"], "rate", minimum=0) if "rate" in raw else None,
        amount_cents=_money(raw["amount"], "amount") if "amount" in raw else None,
        sessions=_int(raw["sessions"], "sessions", minimum=1) if "sessions" in raw else None,
        ceiling_cents=_money(raw["ceiling"], "ceiling") if "ceiling" in raw else None,
        period=period, optam=_enum(Optam, raw.get("optam", "any"), "optam"), group=raw.get("group"),
    )
    if not re.fullmatch(r"[A-Z][A-Z0-9_]{1,63}", g.post):
        raise ValueError("post doit être en majuscules (CONSULT_GP_OPTAM…)")
    if formula is Formula.PCT_BR:
        if g.rate_pct is None:
            raise ValueError("la formule pct_br demande rate (pourcentage de la base, Sécu incluse)")
        if responsable and g.rate_pct < 100:
            raise ValueError("un contrat responsable rembourse au moins le ticket modérateur (rate ≥ 100)")
    elif g.rate_pct is not None:
        raise ValueError(f"rate n'a de sens qu'avec la formule pct_br, pas {formula}")
    if formula in (Formula.FORFAIT, Formula.PER_SESSION) and g.amount_cents is None:
        raise ValueError(f"la formule {formula} demande amount")
    if formula not in (Formula.FORFAIT, Formula.PER_SESSION) and g.amount_cents is not None:
        raise ValueError(f"amount n'a de sens qu'avec forfait ou per_session, pas {formula}")
    if g.sessions is not None and formula is not Formula.PER_SESSION:
        raise ValueError("sessions n'a de sens qu'avec la formule per_session")
    if (g.own_ceiling() is not None and g.own_ceiling() != g.amount_cents or g.sessions or formula is Formula.FORFAIT) \
            and period is None:
        raise ValueError("un plafond ou un nombre de séances demande sa période (period)")
    if g.ceiling_cents is not None and formula is Formula.FORFAIT:
        raise ValueError("un forfait est son propre plafond : amount suffit")
    if g.group is not None:
        if g.group not in groups:
            raise ValueError(f"groupe inconnu : {g.group} (déclarez-le dans un [[group]] avant)")
        if period is not None and period is not groups[g.group].period:
            raise ValueError("la période d'une ligne doit être celle de son groupe")
    if responsable and FRAME_POSTS.search(g.post) and g.category == "optique" and formula is not Formula.HUNDRED_PCT_SANTE:
        ceiling = g.own_ceiling()
        if ceiling is None or ceiling > MAX_FRAME_CENTS:
            raise ValueError("contrat responsable : la monture de classe B est plafonnée à 100 €")
    return g


def _check_plan(guarantees: list[Guarantee], lines: list[int], source: str, responsable: bool) -> None:
    seen: dict[str, int] = {}
    claimed: dict[tuple[str, Optam], str] = {}
    for line, g in zip(lines, guarantees, strict=False):
        if g.post in seen:
            raise PlanFileError(source, line, f"poste en double : {g.post} (déjà ligne {seen[g.post]})")
        seen[g.post] = line
        for act in g.acts:
            for optam in (Optam.OPTAM, Optam.NON_OPTAM) if g.optam is Optam.ANY else (g.optam,):
                other = claimed.get((act, optam))
                if other:
                    raise PlanFileError(source, line, f"l'acte {act} est déjà couvert par {other}")
                claimed[(act, optam)] = g.post
    if responsable:
        # Contrat responsable: a non-OPTAM doctor is reimbursed less than an OPTAM one.
        for line, g in zip(lines, guarantees, strict=False):
            if g.optam is Optam.NON_OPTAM and g.formula is Formula.PCT_BR:
                twins = [o for o in guarantees if o.optam is Optam.OPTAM and set(o.acts) & set(g.acts)]
                for twin in twins:
                    if twin.formula is Formula.PCT_BR and (g.rate_pct or 0) > 100 and (g.rate_pct or 0) >= (twin.rate_pct or 0):
                        raise PlanFileError(
                            source, line, f"contrat responsable : {g.post} (non OPTAM) doit rester sous {twin.post} (OPTAM)"
                        )


class PlanCatalog:
    """Every plan version shipped, by (code, year)."""

    def __init__(self, plans: list[Plan]) -> None:
        self.plans = {(p.code, p.year): p for p in plans}

    @classmethod
    def load(cls, folder: Traversable | None = None) -> PlanCatalog:
        folder = folder or files("claims") / "plans"
        plans = []
        for path in sorted(folder.iterdir(), key=lambda p: p.name):
            if not path.name.endswith(".toml"):
                continue
            plan = parse_plan(path.read_text(encoding="utf-8"), path.name)
            if path.name != f"{plan.code}-{plan.year}.toml":
                raise PlanFileError(path.name, 1, f"le fichier doit s'appeler {plan.code}-{plan.year}.toml")
            plans.append(plan)
        return cls(plans)

    def plan_for(self, code: str, on: date) -> Plan | None:
        """The version in force on a care date (a plan is published for each calendar year)."""
        return self.plans.get((code, on.year))

    def latest(self, code: str, on: date) -> Plan | None:
        years = sorted(y for c, y in self.plans if c == code and y <= on.year)
        return self.plans[(code, years[-1])] if years else None
