-- The member projection grows to what letters, statements, the card and uploads need. It is
-- fed by MemberEnrolled (registry), MemberRegistered and CommunicationPreferencesChanged
-- (paperless) and ProfileUpdated (postal address); rows may come from any of them first.
ALTER TABLE members ALTER COLUMN account_id DROP NOT NULL;
ALTER TABLE members ALTER COLUMN registered_at DROP NOT NULL;
-- E-courriers are on by default (identity's registration default).
ALTER TABLE members ALTER COLUMN paperless SET DEFAULT true;
ALTER TABLE members
    ADD COLUMN membership_number text,
    ADD COLUMN contract_number   text,
    ADD COLUMN first_name        text,
    ADD COLUMN last_name         text,
    ADD COLUMN birth_date        date,
    ADD COLUMN plan_code         text,
    ADD COLUMN role              text,
    ADD COLUMN coverage_start    date,
    ADD COLUMN coverage_end      date,
    ADD COLUMN postal_address    jsonb,
    ADD COLUMN enrolled_at       timestamptz;
CREATE UNIQUE INDEX members_membership_number ON members (membership_number);
CREATE INDEX members_contract ON members (contract_number);

-- An invoice upload: its files are documents of kind 'invoice'.
CREATE TABLE submissions (
    id                            uuid PRIMARY KEY,
    member_id                     uuid        NOT NULL,
    beneficiary_member_id         uuid        NOT NULL,
    beneficiary_membership_number text        NOT NULL,
    contract_number               text        NOT NULL,
    care_type                     text        NOT NULL,
    care_date                     date        NOT NULL,
    amount_charged_cents          integer,
    comment                       text,
    status                        text        NOT NULL,
    status_message                text        NOT NULL,
    claim_id                      uuid,
    created_at                    timestamptz NOT NULL,
    updated_at                    timestamptz NOT NULL,
    submitted_at                  timestamptz
);
CREATE INDEX submissions_member ON submissions (member_id, created_at DESC);

-- Every file a member sends or receives. Served only when scan_status = 'clean' (issued
-- documents are ours, so clean from the start).
CREATE TABLE documents (
    id               uuid PRIMARY KEY,
    member_id        uuid        NOT NULL,
    contract_number  text,
    kind             text        NOT NULL,
    title            text        NOT NULL,
    file_name        text        NOT NULL,
    media_type       text        NOT NULL,
    size_bytes       bigint      NOT NULL,
    sha256           text        NOT NULL,
    storage_key      text        NOT NULL,
    scan_status      text        NOT NULL,
    scan_detail      text,
    scanned_at       timestamptz,
    period           date,
    pages            integer,
    delivery         text,
    print_status     text,
    printed_at       timestamptz,
    submission_id    uuid REFERENCES submissions (id),
    thread_id        uuid,
    claim_id         uuid,
    replaced_at      timestamptz,
    created_at       timestamptz NOT NULL
);
CREATE INDEX documents_member ON documents (member_id, created_at DESC, id DESC);
CREATE INDEX documents_pending_scan ON documents (created_at) WHERE scan_status = 'pending';
CREATE INDEX documents_print_queue ON documents (created_at) WHERE print_status = 'queued';
-- The same file uploaded twice by the same member is the same document.
CREATE UNIQUE INDEX documents_upload_dedupe ON documents (member_id, sha256) WHERE kind = 'invoice';
-- One statement per settled claim, whatever the redeliveries.
CREATE UNIQUE INDEX documents_statement_per_claim ON documents (claim_id) WHERE kind = 'statement';
