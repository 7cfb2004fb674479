-- The PDFs documents issues on an event (statements, the card) are rendered after the event is
-- recorded, by a background renderer (service_layer/rendering.py), or on demand when a member
-- asks for one first. Until then the row is 'pending' with no file: no size, digest nor key yet.
ALTER TABLE documents
    ALTER COLUMN size_bytes DROP NOT NULL,
    ALTER COLUMN sha256 DROP NOT NULL,
    ALTER COLUMN storage_key DROP NOT NULL,
    -- 'pending' until its file is stored, then 'rendered'; NULL for files that never waited
    -- (uploads, letters rendered in their request).
    ADD COLUMN render_status   text,
    -- What to render from, when the row alone does not say it (a statement: its ClaimSettled).
    ADD COLUMN render_source   jsonb,
    ADD COLUMN render_attempts integer NOT NULL DEFAULT 0,
    ADD COLUMN render_after    timestamptz;
CREATE INDEX documents_pending_render ON documents (created_at) WHERE render_status = 'pending';
ALTER TABLE documents ADD CONSTRAINT documents_rendered_has_a_file
    CHECK (coalesce(render_status, '') = 'pending' OR (storage_key IS NOT NULL AND size_bytes IS NOT NULL AND sha256 IS NOT NULL));
