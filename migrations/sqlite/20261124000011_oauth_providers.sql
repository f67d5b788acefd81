-- Instance-level sign-in providers (issue 15, reference 004), configured by operators: "Continue with Google"
-- or any OpenID Provider, for the whole instance. The client secret is sealed with the key file; neither the
-- client id nor the secret is ever returned by the API.
CREATE TABLE oauth_providers (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    slug            TEXT NOT NULL UNIQUE,
    kind            TEXT NOT NULL CHECK (kind IN ('google', 'oidc')),
    issuer          TEXT,
    auth_url        TEXT,
    token_url       TEXT,
    userinfo_url    TEXT,
    client_id       TEXT NOT NULL,
    client_secret   BLOB NOT NULL,
    scopes          TEXT NOT NULL,
    auto_register   BIGINT NOT NULL DEFAULT 1,
    -- JSON array of lower-case domains; empty: anyone the provider vouches for.
    allowed_domains TEXT NOT NULL DEFAULT '[]',
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
