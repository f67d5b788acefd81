-- Accounts, organizations, memberships, API keys, sessions, audit log, rate limits.
-- Times are BIGINT milliseconds since the Unix epoch (UTC) on both backends; ids are ULID text.
CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL,
    password_hash TEXT,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
CREATE TABLE organizations (
    id         TEXT PRIMARY KEY,
    slug       TEXT NOT NULL UNIQUE,
    name       TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE memberships (
    org_id     TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role       TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
    status     TEXT NOT NULL CHECK (status IN ('active', 'pending')),
    created_at BIGINT NOT NULL,
    PRIMARY KEY (org_id, user_id)
);
CREATE INDEX memberships_user ON memberships(user_id);
CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    org_id       TEXT REFERENCES organizations(id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    prefix       TEXT NOT NULL,
    key_hash     TEXT NOT NULL UNIQUE,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT,
    revoked_at   BIGINT
);
CREATE INDEX api_keys_user ON api_keys(user_id);
-- One row per signed-in browser: how it was authenticated and where it is; the tower-sessions record only
-- points here, so revoking a row signs that browser out at its next request.
CREATE TABLE auth_sessions (
    id            TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    method        TEXT NOT NULL,
    connection_id TEXT,
    mfa_done      BIGINT NOT NULL DEFAULT 0,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    last_seen_at  BIGINT NOT NULL,
    ip            TEXT,
    user_agent    TEXT
);
CREATE INDEX auth_sessions_user ON auth_sessions(user_id);
-- The tower-sessions store.
CREATE TABLE http_sessions (
    id          TEXT PRIMARY KEY,
    data        TEXT NOT NULL,
    expiry_date BIGINT NOT NULL
);
CREATE INDEX http_sessions_expiry ON http_sessions(expiry_date);
CREATE TABLE audit_events (
    id            TEXT PRIMARY KEY,
    org_id        TEXT,
    actor_user_id TEXT,
    actor         TEXT NOT NULL,
    action        TEXT NOT NULL,
    target        TEXT,
    outcome       TEXT NOT NULL,
    detail        TEXT,
    ip            TEXT,
    created_at    BIGINT NOT NULL
);
CREATE INDEX audit_events_org ON audit_events(org_id, created_at);
CREATE INDEX audit_events_actor ON audit_events(actor_user_id, created_at);
CREATE TABLE rate_limits (
    key          TEXT PRIMARY KEY,
    window_start BIGINT NOT NULL,
    hits         BIGINT NOT NULL
);
