-- Samples are found by (sampling week, person) instead of (person, time). A testing round's
-- results fall in one week, so they are added to that week's part of the index only, which
-- stays small and in memory, instead of at random places among every sample ever stored (what
-- bounded the import before). A decision reads the weeks of its look-back window (5 or 6 for
-- 30 days), one short index seek each. Weeks are counted from 1970-01-01 (UTC):
-- sampled_at / 604,800,000 ms.
ALTER TABLE samples ADD COLUMN sampled_week BIGINT NOT NULL DEFAULT 0;
UPDATE samples SET sampled_week = sampled_at / 604800000;
DROP INDEX samples_person;
CREATE INDEX samples_week_person ON samples (sampled_week, person_id, sampled_at);

-- Nothing reads entry events by document (they are read by time); the index cost every check
-- a write at a random place. A person's entries, when a feature needs them, will be found by
-- time first, like samples.
DROP INDEX entry_events_doc;
