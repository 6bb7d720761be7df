-- Checks on signed passes. A pass names its person by a pseudonymous reference (an HMAC the
-- server makes); the server keeps it beside the person, so that a check on a pass finds them.
ALTER TABLE people ADD COLUMN pass_ref TEXT;
CREATE UNIQUE INDEX people_pass_ref ON people (pass_ref);

-- How a check identified the person: 'document' (a number typed or read from the card) or
-- 'pass' (a scanned signed pass); and, for a check made offline and uploaded later, the
-- checkpoint's idempotency key: an upload retried records nothing twice.
ALTER TABLE entry_events ADD COLUMN via TEXT NOT NULL DEFAULT 'document';
ALTER TABLE entry_events ADD COLUMN idempotency_key TEXT;
CREATE UNIQUE INDEX entry_events_idempotency ON entry_events (idempotency_key);
