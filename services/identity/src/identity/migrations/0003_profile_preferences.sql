-- Profile, communication preferences, e-mail changes, and the per-account counters that keep
-- resends and re-checks from being abused.

-- The member's contact details (one row per member, made on the first change).
-- Address lines follow the French postal standard (NF Z10-011: 38 characters a line).
CREATE TABLE member_profiles (
    member_id      uuid PRIMARY KEY REFERENCES members (id),
    address_line1  text,
    address_line2  text,
    postal_code    text,
    city           text,
    country        text,
    -- E.164 (+33612345678).
    phone          text,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    -- An address is whole or absent.
    CONSTRAINT member_profiles_address_whole CHECK (
        (address_line1 IS NULL) = (postal_code IS NULL)
        AND (postal_code IS NULL) = (city IS NULL)
        AND (city IS NULL) = (country IS NULL)
    )
);

-- "Profil › Communication". Paperless stays in accounts (chosen at registration); a missing
-- row means the defaults (reimbursement alerts on).
CREATE TABLE communication_preferences (
    account_id            uuid PRIMARY KEY REFERENCES accounts (id),
    reimbursement_alerts  boolean NOT NULL DEFAULT true,
    updated_at            timestamptz NOT NULL DEFAULT now()
);

-- A change of e-mail waits for the new address to confirm it. Only the token's SHA-256 is kept.
CREATE TABLE email_change_tokens (
    token_hash  bytea PRIMARY KEY,
    account_id  uuid NOT NULL REFERENCES accounts (id),
    new_email   text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    revoked_at  timestamptz
);
CREATE INDEX email_change_tokens_account ON email_change_tokens (account_id, created_at);

-- Recent actions counted against a per-account limit (account-exists notices, failed password
-- re-checks). Rows older than the longest window are deleted as new ones come in.
CREATE TABLE account_throttle (
    id          bigserial PRIMARY KEY,
    account_id  uuid NOT NULL REFERENCES accounts (id),
    action      text NOT NULL,
    at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX account_throttle_recent ON account_throttle (account_id, action, at);
CREATE INDEX activation_tokens_account_created ON activation_tokens (account_id, created_at);
