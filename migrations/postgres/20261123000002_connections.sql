-- IdP connections of an organization, the identities they assert, and in-flight SSO sign-ins.
CREATE TABLE connections (
    id                TEXT PRIMARY KEY,
    org_id            TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    protocol          TEXT NOT NULL CHECK (protocol IN ('oidc', 'saml', 'ldap')),
    name              TEXT NOT NULL,
    status            TEXT NOT NULL CHECK (status IN ('active', 'inactive', 'error')),
    is_primary        BIGINT NOT NULL DEFAULT 0,
    provider          TEXT,
    domains           TEXT NOT NULL DEFAULT '[]',
    jit_provisioning  BIGINT NOT NULL DEFAULT 1,
    default_role      TEXT NOT NULL DEFAULT 'member' CHECK (default_role IN ('owner', 'admin', 'member')),
    attribute_mapping TEXT NOT NULL DEFAULT '{}',
    settings          TEXT NOT NULL DEFAULT '{}',
    secret            BYTEA,
    last_tested_at    BIGINT,
    last_test_message TEXT,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL
);
CREATE INDEX connections_org ON connections(org_id);
-- At most one primary connection per protocol per org: the one /settings/sso shows.
CREATE UNIQUE INDEX connections_primary ON connections(org_id, protocol) WHERE is_primary = 1;

CREATE TABLE identities (
    connection_id TEXT NOT NULL REFERENCES connections(id) ON DELETE CASCADE,
    subject       TEXT NOT NULL,
    user_id       TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    email         TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    last_login_at BIGINT NOT NULL,
    PRIMARY KEY (connection_id, subject)
);
CREATE INDEX identities_user ON identities(user_id);

-- One row per started SSO sign-in. The state is stored hashed; the row is claimed once (used_at).
CREATE TABLE sso_flows (
    state_hash    TEXT PRIMARY KEY,
    org_id        TEXT NOT NULL,
    connection_id TEXT NOT NULL,
    browser_hash  TEXT NOT NULL,
    nonce         TEXT NOT NULL,
    pkce_verifier BYTEA NOT NULL,
    return_to     TEXT,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    used_at       BIGINT
);
CREATE INDEX sso_flows_expiry ON sso_flows(expires_at);
