-- A test point's capacity: the samples a day it can take (testing demand is compared with it).
ALTER TABLE places ADD COLUMN capacity BIGINT;
