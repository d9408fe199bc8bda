-- 0005: rate limits per API key and endpoint class (beatframe.api.ratelimit), shared by every API
-- process through this table: each request is one INSERT ... ON CONFLICT DO UPDATE ... RETURNING
-- on its (key, class) row, so concurrent processes never race a read-modify-write, and every
-- decision uses the database's clock, so API hosts with skewed clocks still agree.
--
-- The algorithm is GCRA (a token bucket kept as one timestamp): tat, the "theoretical arrival
-- time", is when the bucket is full again. A row whose tat has passed means exactly what no row
-- means (a full bucket), so any such row may be deleted at any time; there are at most three rows
-- per key, so nothing has to.
--
-- UNLOGGED: a bucket is worth nothing after a crash (it is emptied, i.e. every key starts with a
-- full bucket, which is what a new key gets anyway), and without WAL the write on every request's
-- path commits without waiting for a disk flush. Unlogged tables are not replicated either: after
-- a failover to a standby, buckets start full.
CREATE UNLOGGED TABLE rate_limits (
    key_id      text NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    class       text NOT NULL CHECK (class IN ('generate', 'batch', 'default')),
    tat         timestamptz NOT NULL,
    -- the last request's decision: RETURNING shows only the new row, and a refused request leaves
    -- tat as it was, so the decision is kept beside it rather than guessed from it
    allowed     boolean NOT NULL,
    updated_at  timestamptz NOT NULL,                     -- the last request, by the database's clock
    PRIMARY KEY (key_id, class)
-- every request rewrites its row: free space on the page lets those be HOT updates (no index
-- entry per request, and page pruning instead of vacuum reclaims the old versions)
) WITH (fillfactor = 50);
