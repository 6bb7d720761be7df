-- Entry on a commitment letter, and the alerts that follow its pending results.

-- A sample taken in a pool (10 in 1): the lab reports the pool, then retests its members.
ALTER TABLE samples ADD COLUMN pool_id TEXT;
CREATE INDEX samples_pool ON samples (lab, pool_id);

-- A signed entry commitment letter (《进（返）京人员承诺书》) for one pending sample: the consent
-- record. `status` follows the sample's result to its end: pending → fulfilled (negative),
-- positive, or overdue (no result by `deadline`; fulfilled or positive when it comes after).
CREATE TABLE commitments (
    id INTEGER PRIMARY KEY,
    person_id BIGINT NOT NULL REFERENCES people (id),
    lab TEXT NOT NULL,
    sample_id TEXT NOT NULL,
    letter_version TEXT NOT NULL,
    letter_sha256 TEXT NOT NULL,
    signed_at BIGINT NOT NULL,
    place TEXT NOT NULL,
    signed_via TEXT NOT NULL,
    signed_by TEXT NOT NULL,
    deadline BIGINT NOT NULL,
    status TEXT NOT NULL,
    resolved_at BIGINT,
    UNIQUE (lab, sample_id)
);
-- The overdue scan reads the pending commitments past their deadline.
CREATE INDEX commitments_open ON commitments (status, deadline);
CREATE INDEX commitments_person ON commitments (person_id);

-- Alerts for the health authority: one per cause (`dedup_key`), with a lifecycle.
CREATE TABLE alerts (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    dedup_key TEXT NOT NULL UNIQUE,
    person_id BIGINT REFERENCES people (id),
    payload TEXT NOT NULL,
    status TEXT NOT NULL,
    raised_at BIGINT NOT NULL,
    acknowledged_by TEXT,
    acknowledged_at BIGINT,
    resolved_by TEXT,
    resolved_at BIGINT,
    outcome TEXT
);
CREATE INDEX alerts_status ON alerts (status, raised_at);

-- The outbox: every event to deliver (an alert raised, acknowledged, resolved), written in the
-- same transaction as what caused it. Its id comes from the counter row, taken in that same
-- transaction: writers queue on the row, so ids are committed in their order, without gaps —
-- a reader that has seen id n has seen every id below it (SSE `id`, `Last-Event-ID`).
CREATE TABLE outbox (
    id BIGINT PRIMARY KEY,
    event TEXT NOT NULL,
    alert_id BIGINT REFERENCES alerts (id),
    payload TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE outbox_counter (
    one INTEGER PRIMARY KEY CHECK (one = 1),
    id BIGINT NOT NULL
);
INSERT INTO outbox_counter (one, id) VALUES (1, 0);
