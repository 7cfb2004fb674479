"""Platform pieces every service uses the same way: settings, database, outbox, inbox,
messaging, HTTP errors, health, auth, logging and telemetry."""
