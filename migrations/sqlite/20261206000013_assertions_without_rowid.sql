-- Remembered SAML assertion ids, rebuilt as a WITHOUT ROWID table: the primary key is the table, so remembering
-- an id writes two b-trees (the key and the expiry index) instead of three (rowid table, key index, expiry index).
-- One insert per SAML sign-in. PostgreSQL keeps its table (a heap with its indexes either way).
CREATE TABLE saml_assertions_seen_new (
    connection_id TEXT NOT NULL,
    assertion_id  TEXT NOT NULL,
    expires_at    BIGINT NOT NULL,
    PRIMARY KEY (connection_id, assertion_id)
) WITHOUT ROWID;
INSERT INTO saml_assertions_seen_new (connection_id, assertion_id, expires_at)
    SELECT connection_id, assertion_id, expires_at FROM saml_assertions_seen;
DROP TABLE saml_assertions_seen;
ALTER TABLE saml_assertions_seen_new RENAME TO saml_assertions_seen;
CREATE INDEX saml_assertions_seen_expiry ON saml_assertions_seen(expires_at);
