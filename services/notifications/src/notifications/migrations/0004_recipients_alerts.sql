-- What notifications knows of each member's account, from identity's events: where to write,
-- how to greet, whether the account is activated, and the communication preferences.
CREATE TABLE recipients (
    member_id             uuid PRIMARY KEY,
    account_id            uuid,
    email                 text,
    first_name            text,
    last_name             text,
    activated             boolean NOT NULL DEFAULT false,
    paperless             boolean NOT NULL DEFAULT true,
    -- Identity's default: on until the member turns them off.
    reimbursement_alerts  boolean NOT NULL DEFAULT true,
    updated_at            timestamptz NOT NULL DEFAULT now()
);

-- One alert per thing and recipient, whatever number of events tell of it (a claim settled
-- twice, the same document issued again): (kind, subject) e.g. ('claim', claim id).
CREATE TABLE alerts_sent (
    kind        text NOT NULL,
    subject     text NOT NULL,
    member_id   uuid NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, subject, member_id)
);

-- An event may now mail several members (a claim: the holder and a beneficiary).
ALTER TABLE deliveries DROP CONSTRAINT IF EXISTS deliveries_source_event_id_kind_key;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_source_event_kind_member UNIQUE (source_event_id, kind, member_id);
