-- 0006: the outcome of every HTTP request and a liveness mark per 10-second slot, written by every
-- API process (beatframe.api.metrics, in batches once a second) and read by GET /v1/sla/status, so
-- the SLA status covers all processes. Rows older than twice BEATFRAME_SLA_WINDOW are pruned.
--
-- Both tables are UNLOGGED: they are written at the request rate and only ever read over the last
-- minutes, so they skip the write-ahead log; a database crash empties them (the SLA status then
-- starts over), which is cheaper than logging every request twice.

CREATE UNLOGGED TABLE request_log (
    at          timestamptz NOT NULL,                     -- when the request arrived (API host clock)
    route       text NOT NULL,                            -- the route template, never the raw path
    method      text NOT NULL,
    status      smallint NOT NULL CHECK (status BETWEEN 100 AND 599),
    latency_ms  real NOT NULL CHECK (latency_ms >= 0)     -- until the response started
);
-- the window scans (at >= now - window) and the pruning
CREATE INDEX request_log_at ON request_log (at);

-- one row per 10-second slot in which at least one API process was alive (its flush thread ran);
-- a slot without a row inside the window was down time
CREATE UNLOGGED TABLE api_heartbeats (
    slot        timestamptz PRIMARY KEY                   -- the slot's start, a multiple of 10 s
);
