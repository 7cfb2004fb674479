-- A place with a specialty or a sector ("un dentiste à Toulouse", "secteur 1 au 34090") is the
-- directory's commonest search. With one index per column, PostgreSQL ANDs two bitmaps (every
-- dentist of France, every practitioner of Toulouse: 30 ms) and sorts what is left; with both
-- columns in one index that carries the page order, a page is again an index range read with a
-- LIMIT (0.1 ms). The import rebuilds these on each new table like the others.
CREATE INDEX providers_city_specialty ON providers (city_norm, specialty_code, name_norm, id);
CREATE INDEX providers_postcode_specialty ON providers (postcode, specialty_code, name_norm, id);
CREATE INDEX providers_department_specialty ON providers (department, specialty_code, name_norm, id);
CREATE INDEX providers_postcode_sector ON providers (postcode, sector, name_norm, id);
