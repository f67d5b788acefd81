-- Fixes of the hostile review (issue 10).
-- The org whose identity provider proved the user's address (an SSO sign-in at a domain that org verified).
-- A password account's address is never proven: an SSO sign-in that meets such an account takes it over cleanly.
ALTER TABLE users ADD COLUMN email_proven_org TEXT;
UPDATE users SET email_proven_org = (
    SELECT c.org_id FROM identities i
    JOIN connections c ON c.id = i.connection_id
    JOIN domains d ON d.org_id = c.org_id AND d.status = 'verified'
    WHERE i.user_id = users.id AND users.email LIKE '%@' || d.name
    LIMIT 1
);
-- Whether the session that minted a key had passed its second factor: only such keys satisfy an MFA policy.
ALTER TABLE api_keys ADD COLUMN mfa_verified BIGINT NOT NULL DEFAULT 0;
-- The issuer that asserted the subject: a subject means nothing at another issuer.
ALTER TABLE identities ADD COLUMN issuer TEXT NOT NULL DEFAULT '';
UPDATE identities SET issuer = COALESCE((SELECT (c.settings::json ->> 'issuerUrl') FROM connections c WHERE c.id = identities.connection_id), '');
-- Housekeeping leases: one node at a time runs a named periodic job.
CREATE TABLE leases (
    name     TEXT PRIMARY KEY,
    holder   TEXT NOT NULL,
    until_ms BIGINT NOT NULL
);
CREATE INDEX rate_limits_window ON rate_limits(window_start);
