-- Idempotency-Key leases with an owner: only the request holding a claim
-- (its token in owner) may complete or release it, and it renews
-- locked_until with heartbeats while it runs. body_omitted is the size of a
-- response too large to keep, whose body is NULL.
ALTER TABLE idempotency_keys
    ADD COLUMN owner        text   NOT NULL DEFAULT '',
    ADD COLUMN body_omitted bigint NOT NULL DEFAULT 0;

CREATE INDEX idempotency_keys_locked_until ON idempotency_keys (locked_until) WHERE state = 'in_flight';
