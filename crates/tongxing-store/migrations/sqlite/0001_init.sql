-- Times are INTEGER milliseconds since the Unix epoch (UTC) in every table.
CREATE TABLE people (
    id INTEGER PRIMARY KEY,
    doc_key TEXT NOT NULL UNIQUE,
    doc_kind TEXT NOT NULL,
    doc_number TEXT NOT NULL,
    name TEXT,
    phone TEXT,
    residence_region TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

-- One sample per (lab, sample_id). An integer row id keeps the per-person index narrow (its
-- entries carry the row id, not the text key), which is what a large import pays for most.
CREATE TABLE samples (
    id INTEGER PRIMARY KEY,
    lab TEXT NOT NULL,
    sample_id TEXT NOT NULL,
    person_id INTEGER NOT NULL REFERENCES people(id),
    sampled_at INTEGER NOT NULL,
    site TEXT NOT NULL,
    site_kind TEXT NOT NULL,
    result TEXT NOT NULL,
    revision INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    updated_by TEXT NOT NULL,
    UNIQUE (lab, sample_id)
);
CREATE INDEX samples_person ON samples (person_id, sampled_at);

-- The versions of a sample that corrections replaced; the current one is in samples.
CREATE TABLE sample_history (
    id INTEGER PRIMARY KEY,
    lab TEXT NOT NULL,
    sample_id TEXT NOT NULL,
    revision INTEGER NOT NULL,
    result TEXT NOT NULL,
    sampled_at INTEGER NOT NULL,
    site TEXT NOT NULL,
    site_kind TEXT NOT NULL,
    recorded_at INTEGER NOT NULL,
    recorded_by TEXT NOT NULL
);
CREATE INDEX sample_history_key ON sample_history (lab, sample_id);

CREATE TABLE health_codes (
    person_id INTEGER PRIMARY KEY REFERENCES people(id),
    colour TEXT NOT NULL,
    reason TEXT,
    expires_at INTEGER,
    set_at INTEGER NOT NULL,
    set_by TEXT NOT NULL
);
CREATE TABLE health_code_history (
    id INTEGER PRIMARY KEY,
    person_id INTEGER NOT NULL REFERENCES people(id),
    colour TEXT NOT NULL,
    reason TEXT,
    expires_at INTEGER,
    set_at INTEGER NOT NULL,
    set_by TEXT NOT NULL
);
CREATE INDEX health_code_history_person ON health_code_history (person_id);

CREATE TABLE commuters (
    person_id INTEGER PRIMARY KEY REFERENCES people(id),
    status TEXT NOT NULL,
    kind TEXT NOT NULL,
    residence_region TEXT NOT NULL,
    residence_proof TEXT NOT NULL,
    employer_name TEXT NOT NULL,
    employer_uscc TEXT NOT NULL,
    work_region TEXT NOT NULL,
    applied_at INTEGER NOT NULL,
    decided_at INTEGER,
    decided_by TEXT,
    decision_reason TEXT,
    valid_until INTEGER,
    first_checked_at INTEGER,
    updated_at INTEGER NOT NULL
);
CREATE INDEX commuters_status ON commuters (status);
CREATE TABLE commuter_history (
    id INTEGER PRIMARY KEY,
    person_id INTEGER NOT NULL REFERENCES people(id),
    status TEXT NOT NULL,
    reason TEXT,
    at INTEGER NOT NULL,
    by_token TEXT NOT NULL
);
CREATE INDEX commuter_history_person ON commuter_history (person_id);

CREATE TABLE checkpoints (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    road TEXT,
    kind TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE entry_events (
    id INTEGER PRIMARY KEY,
    checkpoint_id TEXT NOT NULL,
    checked_at INTEGER NOT NULL,
    doc_key TEXT NOT NULL,
    person_id INTEGER,
    verdict TEXT NOT NULL,
    reasons TEXT NOT NULL,
    policy_id TEXT NOT NULL,
    policy_version TEXT NOT NULL,
    facts TEXT NOT NULL,
    plate TEXT,
    officer TEXT NOT NULL
);
CREATE INDEX entry_events_time ON entry_events (checked_at);
CREATE INDEX entry_events_doc ON entry_events (doc_key, checked_at);

CREATE TABLE tokens (
    id TEXT PRIMARY KEY,
    hash TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL,
    scope TEXT NOT NULL,
    label TEXT,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);

CREATE TABLE access_log (
    id INTEGER PRIMARY KEY,
    at INTEGER NOT NULL,
    token_id TEXT NOT NULL,
    role TEXT NOT NULL,
    person_id INTEGER NOT NULL,
    action TEXT NOT NULL,
    purpose TEXT NOT NULL
);
CREATE INDEX access_log_person ON access_log (person_id, at);
