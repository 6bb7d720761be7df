-- Big data for the command centre (issue 13): places with coordinates, flows kept
-- incrementally from the entry events, the detectors' state, and testing-demand snapshots.

-- Checkpoints, test points and counties on the map: data, set by an operator or a simulation.
-- The cloned-code warning measures distances between checkpoints; testing demand sends each
-- county's commuters to the nearest test point.
CREATE TABLE places (
    kind TEXT NOT NULL,
    id TEXT NOT NULL,
    name TEXT,
    lat REAL NOT NULL,
    lon REAL NOT NULL,
    PRIMARY KEY (kind, id)
);

-- Flows: entry events counted per checkpoint and time bucket (`grain` minutes: 15, 60, or 1440
-- for a Beijing day starting at 00:00 +08:00), by verdict, first reason, commuter or visitor, and
-- vehicle or on foot. Kept by one job from the events as they arrive; every view reads these
-- rows, never the events; `tongxing rollup rebuild` makes them again from the events.
CREATE TABLE flows (
    grain INTEGER NOT NULL,
    bucket BIGINT NOT NULL,
    checkpoint_id TEXT NOT NULL,
    verdict TEXT NOT NULL,
    reason TEXT NOT NULL,
    who TEXT NOT NULL,
    mode TEXT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (grain, bucket, checkpoint_id, verdict, reason, who, mode)
);

-- Shortcuts (denied at one checkpoint, checked at another within hours) per day and pair of
-- checkpoints: where they cluster.
CREATE TABLE flow_shortcuts (
    day BIGINT NOT NULL,
    from_checkpoint TEXT NOT NULL,
    to_checkpoint TEXT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (day, from_checkpoint, to_checkpoint)
);

-- The rollup job's progress: every entry event with an id up to `watermark` is counted, but the
-- ids in `gaps` (JSON [[id, first seen ms], …]): ids under the watermark not committed yet when it
-- passed them (PostgreSQL's identity values are taken before commit, so another server's
-- transaction may commit a lower id later). A gap is looked for again at every pass, and given up
-- (a rolled-back transaction) after five minutes. Updated in the transaction that adds the counts:
-- an event is counted once.
CREATE TABLE rollup_state (
    one INTEGER PRIMARY KEY CHECK (one = 1),
    watermark BIGINT NOT NULL,
    gaps TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
INSERT INTO rollup_state (one, watermark, gaps, updated_at) VALUES (1, 0, '[]', 0);

-- Each document's latest check and latest denial, kept by the same job: a new check is compared
-- with them (cloned code: too far too soon; shortcut: denied elsewhere within hours). By
-- document, not person: someone the system has no record of can take a shortcut too.
CREATE TABLE last_checks (
    doc_key TEXT PRIMARY KEY,
    event_id BIGINT NOT NULL,
    checkpoint_id TEXT NOT NULL,
    checked_at BIGINT NOT NULL,
    denied_event_id BIGINT,
    denied_checkpoint TEXT,
    denied_at BIGINT
);

-- Testing-demand forecasts, as computed (the latest is served).
CREATE TABLE demand_forecasts (
    id INTEGER PRIMARY KEY,
    computed_at BIGINT NOT NULL,
    body TEXT NOT NULL
);

-- Positives by sampling time, for clusters and labs' positivity: few, so the index is small.
CREATE INDEX samples_positive ON samples (sampled_at) WHERE result = 'positive';
