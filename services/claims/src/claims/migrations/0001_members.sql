-- Projection of identity's members: who has an online space, fed by MemberRegistered.
CREATE TABLE members (
    member_id      uuid PRIMARY KEY,
    account_id     uuid        NOT NULL,
    paperless      boolean     NOT NULL,
    registered_at  timestamptz NOT NULL
);
