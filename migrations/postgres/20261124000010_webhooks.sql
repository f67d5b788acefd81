-- Signed webhooks (issue 16). An org's endpoints with the event types they take and their signing secret (sealed;
-- the previous one keeps signing until previous_until after a rotation). Deliveries are rows written in the same
-- transaction as the audit event they carry; any node claims a due one (claimed_until), sends it, and records the
-- attempt; failures are retried with backoff until the schedule ends, then marked failed.
CREATE TABLE webhooks (
    id              TEXT PRIMARY KEY,
    org_id          TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    url             TEXT NOT NULL,
    description     TEXT NOT NULL DEFAULT '',
    event_types     TEXT NOT NULL,
    enabled         BIGINT NOT NULL DEFAULT 1,
    secret          BYTEA NOT NULL,
    previous_secret BYTEA,
    previous_until  BIGINT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX webhooks_org ON webhooks(org_id);

CREATE TABLE webhook_deliveries (
    id              TEXT PRIMARY KEY,
    webhook_id      TEXT NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
    org_id          TEXT NOT NULL,
    event_type      TEXT NOT NULL,
    payload         TEXT NOT NULL,
    status          TEXT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    claimed_until   BIGINT,
    last_status     BIGINT,
    last_error      TEXT,
    last_attempt_at BIGINT,
    created_at      BIGINT NOT NULL
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries(status, next_attempt_at);
CREATE INDEX webhook_deliveries_log ON webhook_deliveries(webhook_id, created_at);
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries(webhook_id, status, claimed_until);
