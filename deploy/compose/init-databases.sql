-- docker-compose.yml: one database per service, each owned by its own role (the services
-- never read one another's database). Laptop passwords, dev only.
CREATE ROLE identity LOGIN PASSWORD 'identity-dev';
CREATE ROLE notifications LOGIN PASSWORD 'notifications-dev';
CREATE ROLE documents LOGIN PASSWORD 'documents-dev';
CREATE ROLE claims LOGIN PASSWORD 'claims-dev';
CREATE DATABASE identity OWNER identity;
CREATE DATABASE notifications OWNER notifications;
CREATE DATABASE documents OWNER documents;
CREATE DATABASE claims OWNER claims;
