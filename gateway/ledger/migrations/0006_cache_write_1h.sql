-- Prompt tokens written to Anthropic's one-hour cache, billed at their own
-- rate (twice the input rate, against 1.25 times for the five-minute
-- cache, whose writes stay in cache_write_tokens). Older rows: 0.
ALTER TABLE ledger_attempts ADD COLUMN cache_write_1h_tokens bigint NOT NULL DEFAULT 0 CHECK (cache_write_1h_tokens >= 0);
