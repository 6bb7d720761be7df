-- The revocation list of signed passes: one row per hash (a person's, or one pass's), with the
-- cut-off before which that hash's passes are revoked, and the list version that last set it.
-- A change bumps the single counter row in the same transaction, so versions are gapless and
-- every server sees one order.
CREATE TABLE revocations (
    hash TEXT PRIMARY KEY,
    cutoff BIGINT NOT NULL,
    version BIGINT NOT NULL,
    reason TEXT NOT NULL,
    at BIGINT NOT NULL
);
CREATE INDEX revocations_version ON revocations (version);
CREATE TABLE revocation_counter (
    one INTEGER PRIMARY KEY CHECK (one = 1),
    version BIGINT NOT NULL
);
INSERT INTO revocation_counter (one, version) VALUES (1, 0);
