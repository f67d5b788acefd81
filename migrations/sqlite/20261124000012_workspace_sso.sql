-- Sign-in through instance providers (issue 15). Two ways in:
-- * an org's "workspace SSO" adopts an instance provider: a connection of the org that points at the provider
--   (its settings and secret stay the provider's), so the org's rules (verified domains, JIT, policy) apply as to
--   any connection, and identities of its members are per connection as usual;
-- * "Continue with …" for addresses at domains no org verified: the person's identity at the provider, found by
--   (provider, issuer, subject). `proven`: the provider spoke with authority for the address when it was linked
--   (Google for gmail.com or its hosted domain, any provider for a domain its allowedDomains lists).
ALTER TABLE connections ADD COLUMN instance_provider_id TEXT REFERENCES oauth_providers(id);
CREATE UNIQUE INDEX connections_instance_provider ON connections(org_id) WHERE instance_provider_id IS NOT NULL;
ALTER TABLE sso_flows ADD COLUMN provider_id TEXT;
CREATE TABLE provider_identities (
    provider_id   TEXT NOT NULL REFERENCES oauth_providers(id) ON DELETE CASCADE,
    issuer        TEXT NOT NULL,
    subject       TEXT NOT NULL,
    user_id       TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    email         TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    last_login_at BIGINT NOT NULL,
    proven        BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (provider_id, issuer, subject)
);
CREATE INDEX provider_identities_user ON provider_identities(user_id);
