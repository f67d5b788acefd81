-- Security policy per organization, TOTP second factor per user, and how each API key was minted.
CREATE TABLE security_policies (
    org_id        TEXT PRIMARY KEY REFERENCES organizations(id) ON DELETE CASCADE,
    auth_required TEXT NOT NULL DEFAULT 'any' CHECK (auth_required IN ('any', 'mfa', 'sso')),
    require_mfa   BIGINT NOT NULL DEFAULT 0,
    exempt_roles  TEXT NOT NULL DEFAULT '[]',
    updated_at    BIGINT NOT NULL
);
-- The secret is sealed with the secret box; last_step is the last accepted 30-second step (no replay).
CREATE TABLE mfa_totp (
    user_id      TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    secret       BLOB NOT NULL,
    confirmed_at BIGINT,
    last_step    BIGINT NOT NULL DEFAULT 0,
    created_at   BIGINT NOT NULL
);
CREATE TABLE mfa_recovery_codes (
    user_id   TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    code_hash TEXT NOT NULL,
    used_at   BIGINT,
    PRIMARY KEY (user_id, code_hash)
);
-- The connection of the SSO session a key was created from (keys made under SSO keep working when an org
-- enforces SSO; others do not).
ALTER TABLE api_keys ADD COLUMN created_via_connection TEXT;
