-- A positive result's alert lists the person's entries since sampling and the others checked in
-- the same vehicle within minutes. Found by index, not by walking every check since sampling
-- (which took seconds at 250,000 checks an hour). Both indexes lead with the hour of the check
-- (checked_at / 3,600,000 ms), as samples lead with their week: a check adds its entries to
-- the current hour's part of each index, which stays small and in memory, instead of at a random
-- place among every check ever made; a reader seeks once per hour of its window. The plate index
-- holds vehicle checks only. The cost per check is measured in docs/PERFORMANCE.md.
CREATE INDEX entry_events_hour_person ON entry_events ((checked_at / 3600000), person_id, checked_at);
CREATE INDEX entry_events_hour_plate ON entry_events ((checked_at / 3600000), plate, checked_at) WHERE plate IS NOT NULL;
