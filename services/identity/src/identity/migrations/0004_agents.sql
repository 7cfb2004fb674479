-- Management-centre agents (back office), apart from members: their own table, links, sessions.
CREATE TABLE agents (
    id                 uuid PRIMARY KEY,
    email              text NOT NULL,
    -- The e-mail as compared at log-in (NFKC, trimmed, case-folded): one agent per address.
    email_key          text NOT NULL UNIQUE,
    name               text NOT NULL,
    -- argon2id, like members'; null until the agent sets a password from the one-time link.
    password_hash      text,
    -- TOTP secret (RFC 6238), AES-256-GCM under a key the database does not hold.
    totp_secret_sealed bytea,
    -- The time step of the last code accepted: a code is good once.
    totp_last_step     bigint,
    status             text NOT NULL CHECK (status IN ('pending', 'active', 'disabled')),
    created_at         timestamptz NOT NULL DEFAULT now(),
    activated_at       timestamptz,
    CONSTRAINT agents_active_has_credentials CHECK (
        status <> 'active' OR (password_hash IS NOT NULL AND totp_secret_sealed IS NOT NULL)
    )
);

-- Password-setting links (made by `identity create-agent`): single use, 24 h, SHA-256 only.
CREATE TABLE agent_password_tokens (
    token_hash  bytea PRIMARY KEY,
    agent_id    uuid NOT NULL REFERENCES agents (id),
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    revoked_at  timestamptz
);
CREATE INDEX agent_password_tokens_agent ON agent_password_tokens (agent_id);

-- Agents' sessions: the members' model (a family per log-in, rotating refresh tokens, a replay
-- revokes the family), in tables of their own.
CREATE TABLE agent_session_families (
    id              uuid PRIMARY KEY,
    agent_id        uuid NOT NULL REFERENCES agents (id),
    created_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL,
    last_used_at    timestamptz NOT NULL DEFAULT now(),
    revoked_at      timestamptz,
    revoked_reason  text CHECK (revoked_reason IN ('logout', 'reuse_detected', 'password_reset'))
);
CREATE INDEX agent_session_families_agent_active ON agent_session_families (agent_id) WHERE revoked_at IS NULL;

CREATE TABLE agent_refresh_tokens (
    token_hash  bytea PRIMARY KEY,
    family_id   uuid NOT NULL REFERENCES agent_session_families (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz
);
CREATE INDEX agent_refresh_tokens_family ON agent_refresh_tokens (family_id);
