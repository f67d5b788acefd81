-- Email domains an organization claims, proven by a DNS TXT record, and the join requests they create.
CREATE TABLE domains (
    id              TEXT PRIMARY KEY,
    org_id          TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    name            TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'verified', 'failed')),
    token           TEXT NOT NULL,
    auto_join       TEXT NOT NULL DEFAULT 'off' CHECK (auto_join IN ('off', 'auto', 'approval')),
    last_checked_at BIGINT,
    last_result     TEXT,
    last_message    TEXT,
    verified_at     BIGINT,
    lapsed_at       BIGINT,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_check_at   BIGINT NOT NULL,
    -- When the current run of pending checks began (the 7-day window); "Verify now" on a failed domain restarts it.
    pending_since   BIGINT NOT NULL,
    claimed_until   BIGINT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE UNIQUE INDEX domains_org_name ON domains(org_id, name);
-- A domain is verified by at most one organization at a time.
CREATE UNIQUE INDEX domains_verified_name ON domains(name) WHERE status = 'verified';
CREATE INDEX domains_due ON domains(next_check_at);

CREATE TABLE join_requests (
    id          TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    domain_id   TEXT REFERENCES domains(id) ON DELETE SET NULL,
    via         TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'denied')),
    created_at  BIGINT NOT NULL,
    decided_at  BIGINT,
    decided_by  TEXT
);
CREATE UNIQUE INDEX join_requests_open ON join_requests(org_id, user_id) WHERE status = 'pending';
CREATE INDEX join_requests_user ON join_requests(user_id);
