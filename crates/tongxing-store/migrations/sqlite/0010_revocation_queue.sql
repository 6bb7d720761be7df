-- A code that turns yellow or red must revoke the person's passes that still show the old
-- colour. The revocation hash is keyed with the pass keys, which only servers hold; so the change
-- writes a row here in its own transaction (a lab's CSV import, a follow-up, an officer's PUT),
-- and a server with the keys turns the rows into revocation entries (at once on the server that
-- made the change, within a second under the lease "revocation-queue" otherwise) and deletes
-- them. Nothing is lost between the colour and the revocation: a crash leaves the row.
CREATE TABLE revocation_queue (
    id INTEGER PRIMARY KEY,
    person_id INTEGER NOT NULL,
    reason TEXT NOT NULL,
    at INTEGER NOT NULL
);
