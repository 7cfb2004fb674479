"""A synthetic directory file in the exact format of the Assurance Maladie open data
(liste-ps-YYYYMMDD.csv): `;`-separated, UTF-8 with a BOM, fields quoted when they hold a `;`,
the real column names (in an order of their own, with columns the import ignores).

Real communes and postcodes (claims/directory_data/communes.csv), practitioners spread by
population; a specialty mix near the liberal professions' real counts (nurses, physiotherapists
and GPs first); sectors and OPTAM per specialty; one practitioner in seven with two or three
sites; accents, hyphens, apostrophes and particles in names. Deterministic for a given seed."""

from __future__ import annotations

import bisect
import csv
import random
from collections.abc import Iterator
from importlib.resources import files
from itertools import accumulate
from pathlib import Path

from claims.domain.directory import SPECIALTIES

# The real file's columns, in the order written here (the import reads them by name).
HEADER = (
    "ps_activite_civilite", "ps_activite_nom", "ps_activite_prenom", "ps_activite_raison_sociale",
    "type_ps_code", "specialite_code", "specialite_libelle", "nature_exercice_code", "nature_exercice_libelle",
    "secteur_conventionnel_code", "option_tarifaire_code", "option_tarifaire_libelle", "coordonnees_voie",
    "coordonnees_code_postal", "coordonnees_ville", "coordonnees_num_tel", "activite_particuliere_code",
    "activite_particuliere_libelle",
)

LAST = (
    "Martin Bernard Thomas Petit Robert Richard Durand Dubois Moreau Laurent Simon Michel Lefèvre Leroy Roux David "
    "Bertrand Morel Fournier Girard Bonnet Dupont Lambert Fontaine Rousseau Vincent Muller Lefebvre Faure André "
    "Mercier Blanc Guérin Boyer Garnier Chevalier François Legrand Gauthier Garcia Perrin Robin Clément Morin "
    "Nicolas Henry Roussel Mathieu Gautier Masson Marchand Duval Denis Dumont Marie Lemaire Noël Meyer Dufour "
    "Meunier Brun Blanchard Giraud Joly Rivière Lucas Brunet Gaillard Barbier Arnaud Martinez Gérard Roche Renard "
    "Schmitt Roy Leroux Colin Vidal Caron Picard Roger Fabre Aubert Lemoine Renaud Dumas Lacroix Olivier Philippe "
    "Bourgeois Pierre Benoît Rey Leclerc Payet Rolland Leclercq Guillaume Lecomte López Jean Dupuy Guillot Hubert "
    "Berger Carpentier Sánchez Dupuis Moulin Louis Deschamps Huet Vasseur Perez Boucher Fleury Royer Klein Jacquet "
    "Adam Paris Poirier Marty Aubry Guyot Carré Charles Renault Charpentier Ménard Maillard Baron Bertin Bailly "
    "Hervé Schneider Fernandez Le Gall Collet Léger Bouvier Julien Prévost Millet Perrot Daniel Le Roux Cousin "
    "Germain Breton Besson Langlois Rémy Le Goff Pelletier Lévêque Perrier Leblanc Barré Lebrun Marchal Weber "
    "Mallet Hamon Boulanger Jacob Monnier Michaud Rodriguez Guichard Gillet Étienne Grondin Poulain Tessier "
    "Chevallier Collin Chauvin Da Silva Bouchet Gay Lemaître Bénard Maréchal Humbert Reynaud Antoine Hoarau "
    "Perret Barthélemy Cordier Pichon Lejeune Gilbert Lamy Delaunay Pasquier Carlier Laporte N'Diaye Nguyen "
    "Diallo Traoré Benali Haddad Cohen Lévy Ferreira Dos Santos Pereira Ben Amor Bensaïd Mazé Hénaff Le Bihan "
    "Kerhervé Etcheverry Iriart Pujol Casanova Santoni Ould-Ali Dupré Delacroix Février Crépin Côté Lhôte "
    "Saint-Jean Saint-Martin Dumoulin Desmoulins Van Damme Kowalski Wójcik Öztürk Yılmaz Chérif Mbappé"
).replace("Le Gall", "Le_Gall").replace("Le Roux", "Le_Roux").replace("Le Goff", "Le_Goff").replace(
    "Da Silva", "Da_Silva").replace("Dos Santos", "Dos_Santos").replace("Ben Amor", "Ben_Amor").replace(
    "Le Bihan", "Le_Bihan").replace("Van Damme", "Van_Damme")
LAST_NAMES = [n.replace("_", " ") for n in LAST.split()]
# Rarer surnames, made from French roots: most real names are rare (Martin is 0.3 %).
PREFIXES = ("", "", "", "", "Le ", "La ", "Du", "De La ", "Des", "Di ", "Mac", "Saint-", "Van ", "Ker", "Bel", "Ben ")
ROOTS = (
    "bois champ mont roche val fontaine chêne lièvre fèvre grès pré château moulin rivière forêt pont pierre "
    "ferr mar beau bon clair croix font garn guill hug jourd lab lam marc mor pell rich vign bouch chastel "
    "courtois dauph esc faug gir hérault jol lebl mais nav pasc quent rab sauv tard vauv brun blanch noir vert "
    "rouss grang coud thib gaill belm lorr norm picq flam bourgu breton gasc sav alsac provenç lang"
).split()
SUFFIXES = ("", "", "et", "ot", "in", "ier", "eau", "and", "aud", "ard", "at", "on", "ès", "ière", "ault", "oux", "y", "é")
FIRST_F = (
    "Marie Nathalie Isabelle Sylvie Catherine Christine Sophie Valérie Sandrine Céline Anne Hélène Chloé Zoé "
    "Léa Inès Anaïs Maëlle Élodie Émilie Aurélie Aminata Fatoumata Thi Mai Noémie Gaëlle Agnès Bénédicte Solène "
    "Clémence Justine Manon Pauline Camille Julie Laure Mélanie Océane Véronique Brigitte Françoise Geneviève Yasmine"
).split()
FIRST_M = (
    "Jean Pierre Michel Philippe Alain Nicolas Christophe Stéphane Laurent Frédéric Olivier Éric Thierry David "
    "Julien Sébastien François Jérôme Grégory Cédric Hervé Gaël Loïc Noël Raphaël Joël Mathéo Léo Hugo Lucas "
    "Yann Karim Mehdi Moussa Thomas Antoine Benoît Mathieu Guillaume Vincent Romain Maxime Damien Bruno Rémi Aurélien"
).split()
COMPOUND_FIRST = ("Jean-Pierre", "Marie-Claire", "Anne-Sophie", "Jean-François", "Marie-Hélène", "Pierre-Yves", "Jean-Luc", "Marie-Noëlle")

# (code, weight per 1,000 rows, type_ps_code)
MIX = (
    ("24", 190, "2"), ("26", 150, "2"), ("01", 120, "1"), ("19", 70, "5"), ("28", 40, "2"), ("27", 25, "2"),
    ("21", 15, "2"), ("29", 10, "2"), ("15", 10, "1"), ("03", 10, "1"), ("33", 12, "1"), ("07", 10, "1"),
    ("06", 12, "1"), ("05", 7, "1"), ("12", 6, "1"), ("11", 6, "1"), ("02", 8, "1"), ("08", 5, "1"),
    ("14", 5, "1"), ("13", 4, "1"), ("32", 4, "1"), ("41", 6, "1"), ("16", 3, "1"), ("42", 3, "1"),
    ("70", 3, "1"), ("36", 4, "5"), ("30", 8, "3"), ("31", 2, "1"), ("35", 2, "1"), ("49", 3, "1"),
    ("75", 1, "1"), ("73", 1, "1"), ("44", 1, "1"), ("46", 1, "1"), ("48", 1, "1"), ("34", 1, "1"),
)
PRACTICE = (("01", "Libéral intégral", 80), ("02", "Libéral et salarié", 12), ("03", "Libéral temps partiel hospitalier", 8))
STREETS = (
    "rue de la République", "avenue Jean-Jaurès", "rue Victor-Hugo", "place de l'Église", "rue du Général-de-Gaulle",
    "boulevard Pasteur", "rue des Écoles", "avenue de la Gare", "rue Nationale", "chemin des Prés", "allée des Tilleuls",
    "rue du Château", "impasse des Lilas", "rue Émile-Zola", "cours Gambetta", "rue Saint-Éloi", "route de Paris",
    "place du Marché", "rue de l'Hôtel-de-Ville", "avenue Foch", "rue Pierre-et-Marie-Curie", "quai des Bateliers",
)
PHONE_PREFIX = {"11": "01", "24": "02", "28": "02", "52": "02", "53": "02", "27": "03", "32": "03", "44": "03",
                "75": "05", "76": "05", "84": "04", "93": "04", "94": "04"}


def _communes() -> tuple[list[tuple[str, str, str, str]], list[int]]:
    rows, weights = [], []
    with (files("claims") / "directory_data" / "communes.csv").open(encoding="utf-8", newline="") as handle:
        for r in csv.DictReader(handle):
            rows.append((r["postcode"], r["name"], r["department"], r["insee_code"]))
            weights.append(int(r["population"] or 0) + 50)
    return rows, list(accumulate(weights))


class Generator:
    def __init__(self, seed: int = 2026) -> None:
        self.rng = random.Random(seed)
        self.communes, self.cumulative = _communes()
        self.mix_cumulative = list(accumulate(w for _, w, _ in MIX))
        self.last_weights = list(accumulate(1.0 / (i + 8) for i in range(len(LAST_NAMES))))

    def commune(self) -> tuple[str, str, str, str]:
        return self.communes[bisect.bisect(self.cumulative, self.rng.random() * self.cumulative[-1])]

    def last_name(self) -> str:
        rng = self.rng
        if rng.random() < 0.55:
            name = LAST_NAMES[bisect.bisect(self.last_weights, rng.random() * self.last_weights[-1])]
        else:
            prefix = rng.choice(PREFIXES)
            root = rng.choice(ROOTS)
            name = prefix + (root.capitalize() if not prefix or prefix.endswith((" ", "-")) else root) + rng.choice(SUFFIXES)
        if rng.random() < 0.06:  # a double name
            name = f"{name}-{rng.choice(LAST_NAMES)}"
        return name

    def first_name(self, female: bool) -> str:
        if self.rng.random() < 0.07:
            return self.rng.choice(COMPOUND_FIRST)
        return self.rng.choice(FIRST_F if female else FIRST_M)

    def specialty(self) -> tuple[str, str]:
        i = bisect.bisect(self.mix_cumulative, self.rng.random() * self.mix_cumulative[-1])
        return MIX[i][0], MIX[i][2]

    def tariff(self, code: str, ps_type: str) -> tuple[str, str, str]:
        """(secteur_conventionnel_code, option_tarifaire_code, option_tarifaire_libelle)"""
        rng = self.rng
        if ps_type == "1":
            s1 = 0.88 if code == "01" else 0.45
            roll = rng.random()
            sector = "1" if roll < s1 else ("3" if roll > 0.98 else "2")
            if sector in ("2", "3") and rng.random() < 0.45:
                return sector, "3", "OPTAM-CO" if code in ("04", "41", "16", "49", "07", "10") else "OPTAM"
            return sector, "", ""
        return "1", "", ""

    def phone(self, department: str, region_hint: str) -> str:
        prefix = PHONE_PREFIX.get(region_hint, "0" + str(1 + int(department[:2].replace("2A", "20").replace("2B", "20")) % 5))
        if department.startswith("97"):
            prefix = "05" if department == "971" else "02"
        rest = " ".join(f"{self.rng.randrange(100):02d}" for _ in range(4))
        return f"{prefix} {rest}"

    def practitioners(self, rows: int) -> Iterator[list[str]]:
        rng = self.rng
        written = 0
        while written < rows:
            code, ps_type = self.specialty()
            label = SPECIALTIES[code]
            sites = 1 if rng.random() < 0.86 else (2 if rng.random() < 0.8 else 3)
            if ps_type == "3":  # a laboratory: a company, no person
                last = first = civility = ""
                company = f"Laboratoire {rng.choice(('Bio', 'Cerba', 'Synlab', 'Eurofins', 'Biogroup', 'Unilabs'))} {rng.choice(ROOTS).capitalize()}"
            else:
                female = rng.random() < (0.85 if code in ("24", "21", "28", "29") else 0.5)
                last, first = self.last_name(), self.first_name(female)
                civility = "Mme" if female else "M."
                company = "" if rng.random() < 0.85 else f"Cabinet {rng.choice(('médical', 'paramédical', 'de groupe'))} {rng.choice(STREETS).split(' ', 1)[1]}"
            if rng.random() < 0.01:
                ps_type = "4"  # not conventioned
            sector, option_code, option_label = self.tariff(code, ps_type) if ps_type != "4" else ("", "", "")
            practice = rng.choices(PRACTICE, weights=[p[2] for p in PRACTICE])[0]
            home = self.commune()
            for site in range(sites):
                if written >= rows:
                    break
                postcode, city, department, _ = home if site == 0 or rng.random() < 0.5 else self.commune()
                street = f"{rng.randint(1, 180)} {rng.choice(STREETS)}"
                if rng.random() < 0.02:  # a field with the separator inside: quoted in the file
                    street = f"Bâtiment {rng.choice('ABCD')}; {street}"
                shown_city = city.upper() if rng.random() < 0.5 else city
                yield [civility, last.upper() if rng.random() < 0.3 else last, first, company, ps_type, code, label,
                       practice[0], practice[1], sector, option_code, option_label, street, postcode, shown_city,
                       self.phone(department, "") if rng.random() < 0.93 else "", "", ""]
                written += 1


def write(out: Path, rows: int, seed: int = 2026) -> int:
    out.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with out.open("w", newline="", encoding="utf-8-sig") as handle:
        writer = csv.writer(handle, delimiter=";", quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")
        writer.writerow(HEADER)
        for row in Generator(seed).practitioners(rows):
            writer.writerow(row)
            count += 1
    return count
