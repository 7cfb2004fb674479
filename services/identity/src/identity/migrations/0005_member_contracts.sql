-- The registry's contracts: each member's plan, role on the contract and coverage period (the
-- import fills them; rows imported before stay NULL until the next import settles them).
ALTER TABLE members
    ADD COLUMN plan_code       text,
    ADD COLUMN role            text CHECK (role IN ('holder', 'spouse', 'child')),
    ADD COLUMN coverage_start  date,
    ADD COLUMN coverage_end    date;
