-- One row per e-mail to send. Written in the same transaction as the inbox row of the event
-- that asked for it, then sent by the sender loop: the row is the e-mail's own outbox.
CREATE TABLE deliveries (
    id               uuid PRIMARY KEY,
    source_event_id  uuid        NOT NULL,
    member_id        uuid        NOT NULL,
    kind             text        NOT NULL,
    recipient        text        NOT NULL,
    subject          text        NOT NULL,
    -- Stable across retries, so a resend after a crash is recognisable as the same message.
    message_id       text        NOT NULL UNIQUE,
    -- The rendered message; cleared once sent, since it may hold a secret link.
    body_text        text,
    body_html        text,
    status           text        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
    attempts         integer     NOT NULL DEFAULT 0,
    last_error       text,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    created_at       timestamptz NOT NULL DEFAULT now(),
    sent_at          timestamptz,
    UNIQUE (source_event_id, kind)
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_member ON deliveries (member_id, created_at DESC);
