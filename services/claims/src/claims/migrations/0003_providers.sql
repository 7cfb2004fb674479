-- The directory of health professionals (annuaire santé, Assurance Maladie open data).
-- pg_trgm is a trusted contrib extension: the database owner may create it.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- French communes with their postcodes (claims/directory_data/communes.csv): one row per
-- (commune, postcode), for postcode and city look-ups.
CREATE TABLE communes (
    insee_code  text NOT NULL,
    postcode    text NOT NULL,
    name        text NOT NULL,
    name_norm   text NOT NULL,
    department  text NOT NULL,
    population  integer NOT NULL DEFAULT 0,
    PRIMARY KEY (postcode, insee_code)
);
CREATE INDEX communes_name ON communes (name_norm);

-- One row per commune with its coordinates, for near-me. `geo` is (longitude × cos 46.5°,
-- latitude): plane distances good enough to order by within France, with a GiST index.
CREATE TABLE commune_places (
    insee_code  text PRIMARY KEY,
    latitude    double precision NOT NULL,
    longitude   double precision NOT NULL,
    geo         point NOT NULL
);
CREATE INDEX commune_places_geo ON commune_places USING gist (geo);

-- One row per practitioner and site. An import fills providers_next, builds its indexes, then
-- renames it to providers in one transaction (service_layer/providers_import.py): a search sees
-- the old directory or the new one, never half of one. The indexes are named by generation.
CREATE TABLE providers (
    id               bigint PRIMARY KEY,     -- from the row's identity: stable across files
    last_name        text NOT NULL,
    first_name       text NOT NULL,
    civility         text NOT NULL,
    company          text NOT NULL,
    display_name     text NOT NULL,
    name_norm        text NOT NULL,          -- folded "nom prénom" (or raison sociale)
    name_key         text NOT NULL,          -- folded nom (or raison sociale): what q is matched to
    specialty_code   text NOT NULL,
    specialty_label  text NOT NULL,
    ps_type          text NOT NULL,
    street           text NOT NULL,
    postcode         text NOT NULL,
    city             text NOT NULL,
    city_norm        text NOT NULL,
    department       text NOT NULL,
    phone            text NOT NULL,
    sector           smallint,
    optam            boolean NOT NULL,
    optam_code       text NOT NULL,
    optam_label      text NOT NULL,
    practice_code    text NOT NULL,
    practice_label   text NOT NULL,
    commune_code     text,                   -- INSEE code, when the postcode and city name one
    row_hash         text NOT NULL
);

-- What the searches use (service_layer/providers_search.py). Each import builds these same
-- indexes on its new table, read from pg_indexes: declare an index here and every import keeps it.
-- Pages are ordered by (name_norm, id): each filter's index carries that order, so a page is an
-- index range read with LIMIT, never a sort of every match.
CREATE INDEX providers_name ON providers (name_norm, id);
CREATE INDEX providers_key ON providers (name_key, name_norm, id);
CREATE INDEX providers_specialty ON providers (specialty_code, name_norm, id);
CREATE INDEX providers_postcode ON providers (postcode, name_norm, id);
CREATE INDEX providers_department ON providers (department, name_norm, id);
CREATE INDEX providers_city ON providers (city_norm, name_norm, id);
CREATE INDEX providers_sector ON providers (sector, name_norm, id);
-- OPTAM rows are few (sector 2 doctors who signed it): their own small indexes answer
-- "optam=true", alone or with a specialty, even when nothing matches.
CREATE INDEX providers_optam ON providers (name_norm, id) WHERE optam;
CREATE INDEX providers_specialty_optam ON providers (specialty_code, name_norm, id) WHERE optam;
-- Near-me walks the communes nearest first and takes each one's rows in id order.
CREATE INDEX providers_commune ON providers (commune_code, id);
CREATE INDEX providers_commune_specialty ON providers (commune_code, specialty_code, id);

-- The distinct names (name_key) of the directory, with their row counts: a name search finds
-- the names like q here (a few tens of thousands of rows, trigram index), then their rows
-- through providers_key. Rebuilt and swapped with providers at each import.
CREATE TABLE provider_names (
    name_key  text PRIMARY KEY,
    rows      integer NOT NULL
);
CREATE INDEX provider_names_trgm ON provider_names USING gin (name_key gin_trgm_ops);

-- The specialties of the directory with their row counts (GET /specialties). Swapped too.
CREATE TABLE provider_specialties (
    specialty_code  text PRIMARY KEY,
    label           text NOT NULL,
    rows            integer NOT NULL
);

-- The directory now served: which generation, from which file, when, how many rows.
CREATE TABLE directory_state (
    id           integer PRIMARY KEY CHECK (id = 1),
    generation   bigint NOT NULL,
    source_file  text NOT NULL,
    imported_at  timestamptz NOT NULL,
    rows         integer NOT NULL,
    communes     text NOT NULL           -- checksum of the communes.csv loaded
);
