-- How each row's tokens are known: the vendor's usage ('reported'), the
-- gateway's estimate where the vendor's never came back ('estimated'), no
-- call reached a vendor ('none'), or not said ('unknown'). Rows written
-- before this migration: successes and rejections say what they were;
-- the failed attempts among them, whose usage may have been dropped, are
-- 'unknown'.
ALTER TABLE ledger_attempts ADD COLUMN usage_source text NOT NULL DEFAULT 'unknown'
    CHECK (usage_source IN ('reported', 'estimated', 'none', 'unknown'));

UPDATE ledger_attempts SET usage_source = 'reported' WHERE outcome = 'ok';
UPDATE ledger_attempts SET usage_source = 'none' WHERE outcome IN ('rejected_breaker', 'rejected_budget');
