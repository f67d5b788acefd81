-- Several connections per org (issue 12): one default connection per org takes an email whose domain no
-- connection lists. SAML: a verified response waits in its flow row (sealed) until the browser that started the
-- sign-in collects it; assertion ids are remembered until they expire (replay).
ALTER TABLE connections ADD COLUMN is_default BIGINT NOT NULL DEFAULT 0;
CREATE UNIQUE INDEX connections_default ON connections(org_id) WHERE is_default = 1;
ALTER TABLE sso_flows ADD COLUMN result BYTEA;
CREATE TABLE saml_assertions_seen (
    connection_id TEXT NOT NULL,
    assertion_id  TEXT NOT NULL,
    expires_at    BIGINT NOT NULL,
    PRIMARY KEY (connection_id, assertion_id)
);
CREATE INDEX saml_assertions_seen_expiry ON saml_assertions_seen(expires_at);
