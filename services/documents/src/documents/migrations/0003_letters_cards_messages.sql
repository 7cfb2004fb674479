-- Every back-office action, who did it and on what (never the message bodies themselves).
CREATE TABLE agent_actions (
    id          bigserial PRIMARY KEY,
    agent_id    uuid        NOT NULL,
    action      text        NOT NULL,
    target_type text        NOT NULL,
    target_id   uuid        NOT NULL,
    detail      jsonb       NOT NULL DEFAULT '{}'::jsonb,
    at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX agent_actions_target ON agent_actions (target_type, target_id);

-- The contract's tiers-payant card: one current version per contract, older ones replaced.
CREATE TABLE cards (
    id               uuid PRIMARY KEY,
    contract_number  text        NOT NULL,
    version          integer     NOT NULL,
    holder_member_id uuid        NOT NULL,
    valid_from       date        NOT NULL,
    valid_to         date        NOT NULL,
    content          jsonb       NOT NULL,
    payload          text        NOT NULL,
    pdf_document_id  uuid        NOT NULL,
    png_document_id  uuid        NOT NULL,
    issued_at        timestamptz NOT NULL,
    replaced_at      timestamptz,
    UNIQUE (contract_number, version)
);
CREATE UNIQUE INDEX cards_current ON cards (contract_number) WHERE replaced_at IS NULL;

-- Messages to the management centre.
CREATE TABLE threads (
    id               uuid PRIMARY KEY,
    member_id        uuid        NOT NULL,
    subject_code     text        NOT NULL,
    status           text        NOT NULL,
    claim_id         uuid,
    line_id          uuid,
    dispute_id       uuid UNIQUE,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    last_member_message_at timestamptz NOT NULL
);
CREATE INDEX threads_member ON threads (member_id, updated_at DESC);
CREATE INDEX threads_queue ON threads (last_member_message_at) WHERE status = 'open';

CREATE TABLE thread_messages (
    id          uuid PRIMARY KEY,
    thread_id   uuid        NOT NULL REFERENCES threads (id),
    author      text        NOT NULL,
    agent_id    uuid,
    body        text        NOT NULL,
    created_at  timestamptz NOT NULL
);
CREATE INDEX thread_messages_thread ON thread_messages (thread_id, created_at);
ALTER TABLE documents ADD COLUMN message_id uuid;
