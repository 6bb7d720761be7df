-- Citizens sign in with a one-time code sent to the phone on record, and may act for up to
-- four family members.

-- One row per code sent. The code is stored salted and hashed; `tries` counts wrong answers.
-- `purpose` is 'sign-in', or 'link:<citizen person id>' for a family member's consent.
CREATE TABLE otp_codes (
    id INTEGER PRIMARY KEY,
    person_id BIGINT NOT NULL REFERENCES people (id),
    purpose TEXT NOT NULL,
    salt TEXT NOT NULL,
    code_hash TEXT NOT NULL,
    phone TEXT NOT NULL,
    address TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    tries INTEGER NOT NULL DEFAULT 0,
    used_at BIGINT
);
CREATE INDEX otp_codes_person ON otp_codes (person_id, purpose, created_at);
-- Rate limits count the codes sent to a phone, or asked for from an address, in a window.
CREATE INDEX otp_codes_phone ON otp_codes (phone, created_at);
CREATE INDEX otp_codes_address ON otp_codes (address, created_at);

-- A citizen's session is a token bound to that person, with an end.
ALTER TABLE tokens ADD COLUMN person_id BIGINT REFERENCES people (id);
ALTER TABLE tokens ADD COLUMN expires_at BIGINT;

-- A citizen acts for a family member once the member consented (their own code) or a
-- registry officer approved (a minor). `approved_by` says which.
CREATE TABLE family_links (
    id INTEGER PRIMARY KEY,
    citizen_id BIGINT NOT NULL REFERENCES people (id),
    member_id BIGINT NOT NULL REFERENCES people (id),
    status TEXT NOT NULL,
    requested_at BIGINT NOT NULL,
    decided_at BIGINT,
    approved_by TEXT,
    reason TEXT,
    UNIQUE (citizen_id, member_id)
);
CREATE INDEX family_links_status ON family_links (status, requested_at);
