-- The correlation id of the request that caused the e-mail, so the sender loop (which runs
-- outside that request) logs and publishes under it.
ALTER TABLE deliveries ADD COLUMN correlation_id text;
