-- An attempt's row is recorded before its upstream call too, as
-- 'unfinished': the estimate of its prompt, which is what the vendor bills
-- at least once it has the call. The attempt's finished row replaces it
-- (the one update the ledger makes); a row left 'unfinished' is an attempt
-- whose gateway stopped before it ended, a crash, metered at that estimate.
ALTER TABLE ledger_attempts DROP CONSTRAINT ledger_attempts_outcome_check;
ALTER TABLE ledger_attempts ADD CONSTRAINT ledger_attempts_outcome_check CHECK (outcome IN ('ok', 'client_error',
    'throttled', 'server_error', 'transport_error', 'cancelled', 'rejected_breaker', 'rejected_budget', 'unfinished'));
