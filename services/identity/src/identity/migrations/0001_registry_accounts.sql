-- The member registry, imported from the insurer's back office.
CREATE TABLE members (
    id                 uuid PRIMARY KEY,
    membership_number  text NOT NULL UNIQUE,
    contract_number    text NOT NULL,
    last_name          text NOT NULL,
    first_name         text NOT NULL,
    -- Names as compared at registration: no case, accents, spaces, hyphens or apostrophes.
    last_name_key      text NOT NULL,
    first_name_key     text NOT NULL,
    birth_date         date NOT NULL,
    updated_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX members_contract_number ON members (contract_number);

CREATE TABLE accounts (
    id                 uuid PRIMARY KEY,
    member_id          uuid NOT NULL UNIQUE REFERENCES members (id),
    email              text NOT NULL,
    password_hash      text NOT NULL,
    status             text NOT NULL CHECK (status IN ('pending', 'active')),
    paperless          boolean NOT NULL,
    terms_version      text NOT NULL,
    terms_accepted_at  timestamptz NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    activated_at       timestamptz
);

-- Only the SHA-256 of a link's token is kept: a database leak gives no usable link.
CREATE TABLE activation_tokens (
    token_hash   bytea PRIMARY KEY,
    account_id   uuid NOT NULL REFERENCES accounts (id),
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    used_at      timestamptz,
    revoked_at   timestamptz
);
CREATE INDEX activation_tokens_account ON activation_tokens (account_id);
