"""The directory of conventioned health professionals: the Assurance Maladie open-data file
("annuaire santé", liste-ps-YYYYMMDD.csv) read row by row, the words a member reads, and the
name folding that search and import share. Pure: no I/O.

The file: `;`-separated, UTF-8 with a BOM, fields quoted when they hold a `;` or a quote,
columns found by name (never by position), extra columns ignored. One row is one practitioner at
one site: a practitioner with three practices has three rows.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

# The columns read, by name. Any other column of the file is ignored.
COLUMNS = (
    "ps_activite_nom", "ps_activite_prenom", "ps_activite_civilite", "ps_activite_raison_sociale",
    "specialite_code", "specialite_libelle", "type_ps_code", "coordonnees_voie", "coordonnees_code_postal",
    "coordonnees_ville", "coordonnees_num_tel", "secteur_conventionnel_code", "option_tarifaire_code",
    "option_tarifaire_libelle", "nature_exercice_code", "nature_exercice_libelle",
)
# Without these a row means nothing (a name is the nom or the raison sociale).
REQUIRED = ("specialite_code", "coordonnees_code_postal", "coordonnees_ville")

# CNAM specialty codes (specialite_code) and their labels, as the annuaire santé publishes them;
# the file's own label is kept for each row, this list names the codes the API accepts and
# gives the labels to a search by name ("dentiste", "kiné").
SPECIALTIES: dict[str, str] = {
    "01": "Médecine générale",
    "02": "Anesthésie-réanimation",
    "03": "Cardiologie",
    "04": "Chirurgie générale",
    "05": "Dermatologie et vénérologie",
    "06": "Radiologie",
    "07": "Gynécologie obstétrique",
    "08": "Gastro-entérologie et hépatologie",
    "09": "Médecine interne",
    "10": "Neurochirurgie",
    "11": "Oto-rhino-laryngologie (ORL)",
    "12": "Pédiatrie",
    "13": "Pneumologie",
    "14": "Rhumatologie",
    "15": "Ophtalmologie",
    "16": "Chirurgie urologique",
    "17": "Neuropsychiatrie",
    "18": "Stomatologie",
    "19": "Chirurgien-dentiste",
    "21": "Sage-femme",
    "24": "Infirmier",
    "26": "Masseur-kinésithérapeute",
    "27": "Pédicure-podologue",
    "28": "Orthophoniste",
    "29": "Orthoptiste",
    "30": "Laboratoire d'analyses médicales",
    "31": "Médecine physique et de réadaptation",
    "32": "Neurologie",
    "33": "Psychiatrie",
    "34": "Gériatrie",
    "35": "Néphrologie",
    "36": "Chirurgien-dentiste spécialiste en orthopédie dento-faciale",
    "37": "Anatomie et cytologie pathologiques",
    "38": "Biologie médicale",
    "41": "Chirurgie orthopédique et traumatologie",
    "42": "Endocrinologie et métabolisme",
    "43": "Chirurgie infantile",
    "44": "Chirurgie maxillo-faciale",
    "46": "Chirurgie plastique reconstructrice et esthétique",
    "47": "Chirurgie thoracique et cardio-vasculaire",
    "48": "Chirurgie vasculaire",
    "49": "Chirurgie viscérale et digestive",
    "53": "Chirurgien-dentiste spécialiste en chirurgie orale",
    "54": "Chirurgien-dentiste spécialiste en médecine bucco-dentaire",
    "69": "Chirurgie orale",
    "70": "Gynécologie médicale",
    "71": "Hématologie",
    "72": "Médecine nucléaire",
    "73": "Oncologie médicale",
    "74": "Oncologie radiothérapique",
    "75": "Psychiatrie de l'enfant et de l'adolescent",
    "77": "Obstétrique",
    "78": "Génétique médicale",
    "79": "Gynécologie obstétrique et gynécologie médicale",
}
# What members type for a specialty, besides its label (folded).
SPECIALTY_WORDS: dict[str, str] = {
    "generaliste": "01", "medecin generaliste": "01", "medecin traitant": "01", "cardiologue": "03",
    "dermatologue": "05", "radiologue": "06", "gynecologue": "07", "gastro enterologue": "08", "orl": "11",
    "pediatre": "12", "pneumologue": "13", "rhumatologue": "14", "ophtalmologue": "15", "ophtalmo": "15",
    "urologue": "16", "dentiste": "19", "chirurgien dentiste": "19", "sage femme": "21", "infirmiere": "24",
    "infirmier": "24", "kine": "26", "kinesitherapeute": "26", "podologue": "27", "pedicure": "27",
    "orthophonie": "28", "laboratoire": "30", "neurologue": "32", "psychiatre": "33", "geriatre": "34",
    "nephrologue": "35", "orthodontiste": "36", "endocrinologue": "42",
}

SECTOR_WORDS: dict[int | None, str] = {
    1: "Secteur 1 — conventionné, sans dépassement d'honoraires",
    2: "Secteur 2 — conventionné, honoraires libres (dépassements possibles)",
    3: "Conventionné avec droit permanent à dépassement — dépassements d'honoraires possibles",
    None: "Conventionné — tarifs de la Sécurité sociale",
}
NOT_CONVENTIONED = "Non conventionné — remboursé sur la base du tarif d'autorité, très faible"
OPTAM_CODE = "3"  # option_tarifaire_code of the OPTAM (and OPTAM-CO, labelled so) contracts
OPTAM_WORDS = {
    True: "Adhérent à l'OPTAM — dépassements d'honoraires modérés, mieux remboursés par votre contrat",
    False: "Non adhérent à l'OPTAM — dépassements d'honoraires moins bien remboursés",
    None: "Sans objet",
}
NON_CONVENTIONED_TYPE = "4"  # type_ps_code: 1 médecins, 2 auxiliaires, 3 laboratoires, 4 non conventionnés, 5 dentistes

_FOLD_SPECIAL = str.maketrans({"œ": "oe", "Œ": "oe", "æ": "ae", "Æ": "ae", "ß": "ss", "ø": "o", "Ø": "o", "ł": "l", "Ł": "l"})
_NOT_ALNUM = re.compile(r"[^a-z0-9]+")
_POSTCODE = re.compile(r"^[0-9]{5}$")
_DIGITS = re.compile(r"^[0-9]{1,3}$")


@lru_cache(maxsize=1 << 18)
def fold(text: str) -> str:
    """Lower case, no accents, words of letters and digits separated by one space: what search
    compares. "Lefèvre-N'Diaye  Zoé" → "lefevre n diaye zoe". Letters outside Latin ones are
    dropped. (Cached: a directory file repeats its names, cities and streets.)"""
    if not text.isascii():
        # NFKD splits "è" into "e" and its accent, which the ASCII encoding then drops.
        text = unicodedata.normalize("NFKD", text.translate(_FOLD_SPECIAL)).encode("ascii", "ignore").decode()
    return " ".join(_NOT_ALNUM.sub(" ", text.lower()).split())


def department_of(postcode: str) -> str:
    """The département a postcode belongs to when the commune list does not say: the first two
    digits, three overseas (97x), 2A/2B in Corsica (200xx–201xx South, 202xx–206xx North)."""
    if postcode.startswith("97") or postcode.startswith("98"):
        return postcode[:3]
    if postcode.startswith("20"):
        return "2A" if postcode < "20200" else "2B"
    return postcode[:2]


def sector_words(sector: int | None, conventioned: bool) -> str:
    return SECTOR_WORDS.get(sector, SECTOR_WORDS[None]) if conventioned else NOT_CONVENTIONED


def optam_words(optam: bool, sector: int | None) -> str:
    # OPTAM is an option for doctors who may charge more than the tariff: sector 2 (and DP).
    return OPTAM_WORDS[optam] if sector in (2, 3) else OPTAM_WORDS[None]


def specialty_code(value: str) -> str | None:
    """The CNAM code a member's `specialty` names: a code ("1", "01"), a label or a usual word
    ("dentiste", "Cardiologie"), accents and case aside. None: nothing known by that name."""
    text = value.strip()
    if _DIGITS.match(text):
        code = text.zfill(2)
        return code if code in SPECIALTIES else None
    folded = fold(text)
    if not folded:
        return None
    for code, label in SPECIALTIES.items():
        if fold(label) == folded:
            return code
    return SPECIALTY_WORDS.get(folded)


class MalformedRow(ValueError):
    """A row the import leaves out, with its reason in French."""


@dataclass(frozen=True, slots=True)
class ProviderRow:
    line: int
    last_name: str
    first_name: str
    civility: str
    company: str
    specialty_code: str
    specialty_label: str
    ps_type: str
    street: str
    postcode: str
    city: str
    phone: str
    sector: int | None
    optam: bool
    optam_code: str
    optam_label: str
    practice_code: str
    practice_label: str

    @property
    def display_name(self) -> str:
        person = " ".join(p for p in (self.first_name, self.last_name) if p)
        return person or self.company

    @property
    def name_norm(self) -> str:
        """What name search compares: "nom prénom", or the raison sociale (a laboratory)."""
        person = fold(f"{self.last_name} {self.first_name}")
        return person or fold(self.company)

    @property
    def name_key(self) -> str:
        """What a name search (q) is matched to: the folded surname, or the raison sociale."""
        return fold(self.last_name) or fold(self.company)

    @property
    def identity(self) -> str:
        """Who and where: the same identity in a newer file is the same row, changed or not."""
        return "|".join((fold(self.last_name), fold(self.first_name), fold(self.company), self.specialty_code,
                         self.postcode, fold(self.street), fold(self.city)))

    @property
    def conventioned(self) -> bool:
        return self.ps_type != NON_CONVENTIONED_TYPE


def row_id(identity: str) -> int:
    """A stable 63-bit id from a row's identity: the same practitioner at the same site keeps
    its id (and its place in the paging order) from one file to the next."""
    return int.from_bytes(hashlib.blake2b(identity.encode(), digest_size=8).digest(), "big") >> 1


_UNTIDY = re.compile(r"\s\s|[\x00-\x1f\x7f\x85\xa0\u2028\u2029]")  # fields joined by "|" below
MAX_LENGTHS = {"ps_activite_civilite": 20, "specialite_code": 3, "type_ps_code": 3, "coordonnees_code_postal": 10,
               "coordonnees_num_tel": 30, "secteur_conventionnel_code": 3, "option_tarifaire_code": 3,
               "nature_exercice_code": 10, "ps_activite_nom": 100, "ps_activite_prenom": 100, "coordonnees_ville": 100}
_LIMITS = tuple(MAX_LENGTHS.get(c, 200) for c in COLUMNS)


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _tidy(text: str) -> str:
    """Control characters (NUL included) and runs of spaces become one space."""
    return " ".join(_CONTROL.sub(" ", text).split())


def parse_row(values: list[str], positions: tuple[int, ...], line: int) -> ProviderRow:
    """One data row of the file: its fields in file order, `positions` the place of each of
    COLUMNS in them (-1: the file has no such column; header_index gives them). Raises
    MalformedRow with the reason."""
    fields = [values[i].strip() if i >= 0 else "" for i in positions]
    if _UNTIDY.search("|".join(fields)):
        fields = [_tidy(f) for f in fields]
    for name, value, limit in zip(COLUMNS, fields, _LIMITS):
        if len(value) > limit:
            raise MalformedRow(f"{name} dépasse {limit} caractères")
    (last, first, civility, company, code, label, ps_type, street, postcode, city, phone, sector_text,
     optam_code, optam_label, practice_code, practice_label) = fields
    for name, value in (("specialite_code", code), ("coordonnees_code_postal", postcode), ("coordonnees_ville", city)):
        if not value:
            raise MalformedRow(f"{name} est vide")
    if not fold(last) and not fold(company):
        raise MalformedRow("ni nom (ps_activite_nom) ni raison sociale")
    if not _DIGITS.match(code):
        raise MalformedRow(f"specialite_code n'est pas un code numérique (lu : {code!r})")
    code = code.zfill(2)
    if not _POSTCODE.match(postcode):
        raise MalformedRow(f"coordonnees_code_postal n'est pas un code postal à 5 chiffres (lu : {postcode!r})")
    if sector_text not in ("", "0", "1", "2", "3"):
        raise MalformedRow(f"secteur_conventionnel_code doit valoir 1, 2 ou 3 (lu : {sector_text!r})")
    if optam_code and not optam_code.isdigit():
        raise MalformedRow(f"option_tarifaire_code n'est pas numérique (lu : {optam_code!r})")
    return ProviderRow(
        line, last, first, civility, company, code, label or SPECIALTIES.get(code, code), ps_type, street, postcode,
        city, phone, int(sector_text) if sector_text in ("1", "2", "3") else None, optam_code == OPTAM_CODE,
        optam_code, optam_label, practice_code, practice_label,
    )


def header_index(header: list[str]) -> tuple[int, ...]:
    """The place of each of COLUMNS in the file's header, by name (a BOM, spaces or case around
    a name do not matter), -1 for a column the file lacks. Raises ValueError naming the required
    columns it lacks."""
    names = [h.lstrip("\ufeff").strip().lower() for h in header]
    index = {name: i for i, name in reversed(list(enumerate(names)))}
    missing = [c for c in (*REQUIRED, "ps_activite_nom", "ps_activite_raison_sociale") if c not in index]
    if missing:
        raise ValueError(f"colonnes manquantes : {', '.join(missing)}")
    return tuple(index.get(c, -1) for c in COLUMNS)


def row_hash(row: ProviderRow) -> str:
    """What a changed row differs by (every stored field)."""
    fields = (row.last_name, row.first_name, row.civility, row.company, row.specialty_code, row.specialty_label,
              row.ps_type, row.street, row.postcode, row.city, row.phone, str(row.sector), row.optam_code,
              row.optam_label, row.practice_code, row.practice_label)
    return hashlib.blake2b("\x1f".join(fields).encode(), digest_size=12).hexdigest()


def postcode_valid(value: str) -> bool:
    return bool(_POSTCODE.match(value))
