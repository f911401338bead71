-- Idempotency-Key records of the gateway, per tenant (Stripe's model). A key
-- is claimed 'in_flight' by the first request; duplicates wait and then
-- replay the stored response. locked_until lets another gateway process take
-- over a claim whose owner died; expires_at is the retention window.
CREATE TABLE idempotency_keys (
    tenant        text        NOT NULL,
    key           text        NOT NULL,
    body_hash     bytea       NOT NULL,
    state         text        NOT NULL CHECK (state IN ('in_flight', 'done')),
    status        integer,
    content_type  text,
    body          bytea,
    locked_until  timestamptz NOT NULL,
    expires_at    timestamptz NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, key)
);

CREATE INDEX idempotency_keys_expires_at ON idempotency_keys (expires_at);
