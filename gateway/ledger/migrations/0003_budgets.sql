-- Tenant budgets: spend and outstanding reservations per fixed window.
-- Reservations are taken with a conditional UPDATE (spent + reserved +
-- amount <= limit), so concurrent requests, in any number of gateway
-- processes, can never overshoot the limit.
CREATE TABLE budget_windows (
    tenant        text            NOT NULL,
    window_start  timestamptz     NOT NULL,
    spent         numeric(20, 12) NOT NULL DEFAULT 0 CHECK (spent >= 0),
    reserved      numeric(20, 12) NOT NULL DEFAULT 0 CHECK (reserved >= 0),
    PRIMARY KEY (tenant, window_start)
);
