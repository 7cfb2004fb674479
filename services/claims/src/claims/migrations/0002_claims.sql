-- Contracts and beneficiaries: claims's projection of identity's MemberEnrolled.
CREATE TABLE beneficiaries (
    member_id          uuid PRIMARY KEY,
    membership_number  text        NOT NULL UNIQUE,
    contract_number    text        NOT NULL,
    last_name          text        NOT NULL,
    first_name         text        NOT NULL,
    birth_date         date        NOT NULL,
    plan_code          text        NOT NULL,
    role               text,
    coverage_start     date        NOT NULL,
    coverage_end       date,
    updated_at         timestamptz NOT NULL DEFAULT now(),
    -- Order of first enrolment: with no role given, the contract's first member is its holder.
    seq                bigserial
);
CREATE INDEX beneficiaries_contract ON beneficiaries (contract_number, seq);

-- The holder of each contract: the member with role "holder", else the first enrolled.
CREATE VIEW contract_holders AS
    SELECT DISTINCT ON (contract_number) contract_number, member_id AS holder_member_id
    FROM beneficiaries
    ORDER BY contract_number, (role IS NOT DISTINCT FROM 'holder') DESC, seq;

-- A claim: one Sécu décompte (source noemie) or one paper claim (source upload).
CREATE TABLE claims (
    id                     uuid PRIMARY KEY,
    source                 text        NOT NULL CHECK (source IN ('noemie', 'upload')),
    external_ref           text        NOT NULL,
    submission_id          uuid,
    contract_number        text        NOT NULL,
    holder_member_id       uuid        NOT NULL,
    beneficiary_member_id  uuid        NOT NULL,
    status                 text        NOT NULL,
    care_type              text,
    care_date              date,
    amount_declared_cents  bigint,
    comment                text,
    document_ids           uuid[],
    rejection_reason       text,
    received_at            timestamptz NOT NULL,
    settled_at             timestamptz,
    UNIQUE (source, external_ref)
);
CREATE INDEX claims_status ON claims (status, received_at, id);

-- Every status a claim took, with its time, reason and who (an agent id, or "noemie").
CREATE TABLE claim_status_history (
    id           bigserial PRIMARY KEY,
    claim_id     uuid        NOT NULL REFERENCES claims (id),
    status       text        NOT NULL,
    reason_code  text,
    actor        text        NOT NULL,
    at           timestamptz NOT NULL
);
CREATE INDEX claim_status_history_claim ON claim_status_history (claim_id, id);

-- Reimbursement lines. Never edited once written: a correction is a reversal line (negative
-- amounts, reverses_line_id) plus a new line. Paid lines with ceiling_keys are the ceiling
-- consumption ledger (per beneficiary, per key, by care date).
CREATE TABLE claim_lines (
    id                     uuid PRIMARY KEY,
    claim_id               uuid        NOT NULL REFERENCES claims (id),
    line_number            integer     NOT NULL,
    kind                   text        NOT NULL DEFAULT 'original' CHECK (kind IN ('original', 'reversal', 'correction')),
    reverses_line_id       uuid,
    beneficiary_member_id  uuid        NOT NULL,
    contract_number        text        NOT NULL,
    care_date              date        NOT NULL,
    act_code               text        NOT NULL,
    act_label              text        NOT NULL,
    quantity               integer     NOT NULL,
    amount_charged_cents   bigint      NOT NULL,
    secu_base_cents        bigint      NOT NULL,
    secu_rate_pct          integer     NOT NULL,
    secu_paid_cents        bigint      NOT NULL,
    participation_cents    bigint      NOT NULL,
    mutuelle_paid_cents    bigint      NOT NULL,
    out_of_pocket_cents    bigint      NOT NULL,
    practitioner_id        text,
    practitioner_sector    integer,
    optam                  boolean,
    payee                  text        NOT NULL,
    category               text,
    post                   text,
    plan_code              text,
    plan_year              integer,
    ceiling_keys           text[],
    sessions               integer     NOT NULL DEFAULT 0,
    capped                 boolean     NOT NULL DEFAULT false,
    status                 text        NOT NULL CHECK (status IN ('paid', 'rejected')),
    rejection_reason       text,
    duplicate_of           uuid,
    dedupe_key             text        NOT NULL,
    settled_at             timestamptz NOT NULL,
    UNIQUE (claim_id, line_number)
);
CREATE INDEX claim_lines_beneficiary ON claim_lines (beneficiary_member_id, care_date DESC, id DESC);
CREATE INDEX claim_lines_dedupe ON claim_lines (dedupe_key) WHERE status = 'paid' AND kind = 'original';
CREATE INDEX claim_lines_ledger ON claim_lines (beneficiary_member_id) WHERE ceiling_keys IS NOT NULL AND status = 'paid';
CREATE INDEX claim_lines_claim ON claim_lines (claim_id, line_number);

-- "Je ne reconnais pas ce remboursement".
CREATE TABLE disputes (
    id           uuid PRIMARY KEY,
    line_id      uuid        NOT NULL REFERENCES claim_lines (id),
    claim_id     uuid        NOT NULL REFERENCES claims (id),
    member_id    uuid        NOT NULL,
    comment      text,
    created_at   timestamptz NOT NULL
);
CREATE INDEX disputes_line ON disputes (line_id);
CREATE INDEX disputes_created ON disputes (created_at DESC, id);

-- Every back-office action: who, when, what.
CREATE TABLE agent_audit (
    id         bigserial PRIMARY KEY,
    agent_id   uuid        NOT NULL,
    action     text        NOT NULL,
    claim_id   uuid,
    detail     jsonb       NOT NULL DEFAULT '{}'::jsonb,
    at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX agent_audit_agent ON agent_audit (agent_id, at);
