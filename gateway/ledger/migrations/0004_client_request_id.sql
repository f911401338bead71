-- The client's X-Request-ID, kept beside the ledger's key, never as it:
-- request_id is minted by the gateway, so no client can choose, collide
-- with or reuse the key of a row. Rows written before this migration keep
-- an empty client_request_id.
ALTER TABLE ledger_attempts ADD COLUMN client_request_id text NOT NULL DEFAULT '';

CREATE INDEX ledger_attempts_client_request_id ON ledger_attempts (client_request_id) WHERE client_request_id <> '';
