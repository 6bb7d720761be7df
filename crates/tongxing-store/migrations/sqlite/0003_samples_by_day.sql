-- Samples are found by (sampled day, person) instead of (person, time). A testing round's
-- results carry one or two sampling days, so they are added to that day's part of the index
-- only, which stays small and in memory, instead of at random places across every sample ever
-- stored (the import's cost before this). A decision reads the days of its look-back window,
-- one short index seek each. Days are UTC days since 1970-01-01: sampled_at / 86,400,000.
ALTER TABLE samples ADD COLUMN sampled_day INTEGER NOT NULL DEFAULT 0;
UPDATE samples SET sampled_day = sampled_at / 86400000;
DROP INDEX samples_person;
CREATE INDEX samples_day_person ON samples (sampled_day, person_id, sampled_at);
