-- Sessions. A log-in opens a family; its refresh tokens rotate on every use (the used one is
-- kept, stamped, to recognise a replay). A replayed token revokes its whole family. A family
-- lives at most until expires_at (absolute lifetime), however often it is refreshed.
CREATE TABLE session_families (
    id              uuid PRIMARY KEY,
    account_id      uuid NOT NULL REFERENCES accounts (id),
    created_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL,
    last_used_at    timestamptz NOT NULL DEFAULT now(),
    revoked_at      timestamptz,
    revoked_reason  text CHECK (revoked_reason IN
                        ('logout', 'logout_everywhere', 'reuse_detected', 'password_reset', 'password_changed'))
);
CREATE INDEX session_families_account_active ON session_families (account_id) WHERE revoked_at IS NULL;
CREATE INDEX session_families_expires ON session_families (expires_at);

-- Only the SHA-256 of a refresh token is kept.
CREATE TABLE refresh_tokens (
    token_hash  bytea PRIMARY KEY,
    family_id   uuid NOT NULL REFERENCES session_families (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);

-- Log-in throttling, per identifier as typed (membership or contract number), known or not:
-- the key is an HMAC of the normalised identifier, so the table holds no identifier (nor a
-- password typed in the wrong field) and an unknown identifier is throttled like a known one.
CREATE TABLE login_throttles (
    key_hash              bytea PRIMARY KEY,
    consecutive_failures  integer NOT NULL DEFAULT 0,
    last_failure_at       timestamptz,
    window_started_at     timestamptz,
    window_failures       integer NOT NULL DEFAULT 0,
    blocked_until         timestamptz
);
CREATE INDEX login_throttles_last_failure ON login_throttles (last_failure_at);

-- Password reset links: single use, short-lived, only the SHA-256 kept; a newer link revokes
-- the older ones.
CREATE TABLE password_reset_tokens (
    token_hash  bytea PRIMARY KEY,
    account_id  uuid NOT NULL REFERENCES accounts (id),
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    revoked_at  timestamptz
);
CREATE INDEX password_reset_tokens_account ON password_reset_tokens (account_id);
