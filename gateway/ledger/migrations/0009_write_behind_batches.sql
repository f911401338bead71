-- One row per round trip of the gateway's write-behind (idempotency
-- completions and releases, budget settlements), written by the round trip
-- itself, in its transaction: the row is there if and only if the round
-- trip committed. When a round trip fails after it went out (a connection
-- lost, a timeout), the writer finds out by inserting the same id as
-- fenced: the insert waits for a round trip still in flight to end, and
-- once the fenced row is in, the round trip can never commit. Rows are
-- deleted an hour after they were written, long after any such check.
CREATE TABLE write_behind_batches (
    id          uuid        PRIMARY KEY,
    fenced      boolean     NOT NULL DEFAULT false,
    written_at  timestamptz NOT NULL DEFAULT now()
);
