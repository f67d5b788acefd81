-- Operators (instance administrators) and the applications that receive signed-in users (issue 11).
CREATE TABLE operators (
    user_id    TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL
);
CREATE TABLE applications (
    id                       TEXT PRIMARY KEY,
    client_id                TEXT NOT NULL UNIQUE,
    name                     TEXT NOT NULL,
    redirect_uris            TEXT NOT NULL DEFAULT '[]',
    session_duration_minutes BIGINT NOT NULL,
    max_session_minutes      BIGINT NOT NULL,
    mfa_handling             TEXT NOT NULL CHECK (mfa_handling IN ('latchkey', 'app')),
    created_at               BIGINT NOT NULL,
    updated_at               BIGINT NOT NULL
);
-- Client secrets are 256-bit random values stored as SHA-256 digests; a rotated secret keeps working until expires_at.
CREATE TABLE application_secrets (
    id             TEXT PRIMARY KEY,
    application_id TEXT NOT NULL REFERENCES applications(id) ON DELETE CASCADE,
    secret_hash    TEXT NOT NULL UNIQUE,
    prefix         TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT
);
CREATE INDEX application_secrets_app ON application_secrets(application_id);
-- The hand-off: a sign-in started by an application remembers where to send the browser back.
ALTER TABLE sso_flows ADD COLUMN application_id TEXT;
ALTER TABLE sso_flows ADD COLUMN redirect_uri TEXT;
ALTER TABLE sso_flows ADD COLUMN app_state TEXT;
-- One-time tokens handed to applications (stored hashed, single use, 5 minutes). A pending hand-off waits for
-- the browser to pass its second factor on Latchkey's own pages first (mfa_handling = latchkey).
CREATE TABLE sso_tokens (
    token_hash     TEXT PRIMARY KEY,
    kind           TEXT NOT NULL CHECK (kind IN ('token', 'pending')),
    application_id TEXT NOT NULL REFERENCES applications(id) ON DELETE CASCADE,
    user_id        TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    org_id         TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    connection_id  TEXT,
    method         TEXT NOT NULL,
    protocol       TEXT,
    subject        TEXT,
    provisioned    BIGINT NOT NULL DEFAULT 0,
    -- authenticated: nothing is owed (else the app gets an intermediate session); otp: a second factor was passed.
    authenticated  BIGINT NOT NULL DEFAULT 0,
    otp            BIGINT NOT NULL DEFAULT 0,
    redirect_uri   TEXT NOT NULL,
    app_state      TEXT,
    browser_session TEXT,
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    used_at        BIGINT
);
CREATE INDEX sso_tokens_expiry ON sso_tokens(expires_at);
-- Sessions handed to applications are rows of auth_sessions too (the Sessions page lists them), found by the
-- digest of their token.
ALTER TABLE auth_sessions ADD COLUMN application_id TEXT;
ALTER TABLE auth_sessions ADD COLUMN token_hash TEXT;
ALTER TABLE auth_sessions ADD COLUMN org_id TEXT;
-- An application's session that still owes its second factor (mfa_handling = app).
ALTER TABLE auth_sessions ADD COLUMN intermediate BIGINT NOT NULL DEFAULT 0;
CREATE UNIQUE INDEX auth_sessions_token ON auth_sessions(token_hash);
-- Signing keys of session JWTs, shared by every node: the private key sealed with the key file.
CREATE TABLE signing_keys (
    kid         TEXT PRIMARY KEY,
    alg         TEXT NOT NULL,
    public_key  BYTEA NOT NULL,
    private_key BYTEA NOT NULL,
    created_at  BIGINT NOT NULL,
    retired_at  BIGINT
);
