-- One row per upstream attempt of a gateway request. (request_id, attempt) is
-- the identity: writes use ON CONFLICT DO NOTHING, so a record written twice
-- (a retried batch, a replayed spool) is counted once.
CREATE TABLE ledger_attempts (
    request_id          text        NOT NULL,
    attempt             integer     NOT NULL CHECK (attempt >= 1),
    idempotency_key     text        NOT NULL DEFAULT '',
    tenant              text        NOT NULL,
    route               text        NOT NULL,
    provider            text        NOT NULL,
    model               text        NOT NULL,
    outcome             text        NOT NULL CHECK (outcome IN ('ok', 'client_error', 'throttled',
                            'server_error', 'transport_error', 'cancelled', 'rejected_breaker', 'rejected_budget')),
    http_status         integer     NOT NULL DEFAULT 0,
    error_class         text        NOT NULL DEFAULT '',
    error_message       text        NOT NULL DEFAULT '',
    input_tokens        bigint      NOT NULL CHECK (input_tokens >= 0),
    output_tokens       bigint      NOT NULL CHECK (output_tokens >= 0),
    reasoning_tokens    bigint      NOT NULL CHECK (reasoning_tokens >= 0),
    cache_read_tokens   bigint      NOT NULL CHECK (cache_read_tokens >= 0),
    cache_write_tokens  bigint      NOT NULL CHECK (cache_write_tokens >= 0),
    -- USD; 12 decimal places keep per-token prices of fractions of a micro-dollar exact.
    cost                numeric(20, 12) NOT NULL CHECK (cost >= 0),
    started_at          timestamptz NOT NULL,
    finished_at         timestamptz NOT NULL,
    provider_request_id text        NOT NULL DEFAULT '',
    recorded_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (request_id, attempt)
);

CREATE INDEX ledger_attempts_started_at ON ledger_attempts (started_at);
CREATE INDEX ledger_attempts_tenant_started_at ON ledger_attempts (tenant, started_at);
