-- Rules as data: entry events record the rules they evaluated; rule sets can be published.

-- JSON [[rule id, rule version], ...]: the rules evaluated for the decision.
ALTER TABLE entry_events ADD COLUMN rule_versions TEXT NOT NULL DEFAULT '[]';

-- Entry policies (rule sets) published over the API; the built-in ones ship with the binary.
CREATE TABLE policies (
    id TEXT NOT NULL,
    version TEXT NOT NULL,
    body TEXT NOT NULL,
    published_at INTEGER NOT NULL,
    published_by TEXT NOT NULL,
    activated_at INTEGER,
    activated_by TEXT,
    PRIMARY KEY (id, version)
);

-- Who published or activated which policy, when.
CREATE TABLE policy_audit (
    id INTEGER PRIMARY KEY,
    at INTEGER NOT NULL,
    token_id TEXT NOT NULL,
    action TEXT NOT NULL,
    policy_id TEXT NOT NULL,
    policy_version TEXT NOT NULL,
    detail TEXT
);
