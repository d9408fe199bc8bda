-- 0007: webhooks: the project's endpoints, the events (a transactional outbox: each event is
-- inserted in the same transaction as the change it reports), one delivery per event and endpoint,
-- and a log of every attempt.

CREATE TABLE webhook_endpoints (
    id          text PRIMARY KEY CHECK (id LIKE 'we\_%'),
    project_id  text NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    env         text NOT NULL CHECK (env IN ('test', 'live')),
    url         text NOT NULL CHECK (length(url) BETWEEN 1 AND 2048),
    -- the signing secret is needed to sign every delivery, so it is kept; the API shows it once
    secret      text NOT NULL,
    events      text[] NOT NULL,                          -- event types, or '*' for all
    description text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    deleted_at  timestamptz,
    UNIQUE (project_id, id)
);
CREATE INDEX webhook_endpoints_list ON webhook_endpoints (project_id, created_at DESC, id DESC);

CREATE TABLE events (
    id          text PRIMARY KEY CHECK (id LIKE 'evt\_%'),
    project_id  text NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    env         text NOT NULL CHECK (env IN ('test', 'live')),
    type        text NOT NULL,
    data        jsonb NOT NULL,                           -- {"object": …}, as delivered
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (project_id, id)
);
CREATE INDEX events_list ON events (project_id, created_at DESC, id DESC);

CREATE TABLE webhook_deliveries (
    id              text PRIMARY KEY CHECK (id LIKE 'whd\_%'),
    project_id      text NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    env             text NOT NULL CHECK (env IN ('test', 'live')),
    event_id        text NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    endpoint_id     text NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'succeeded', 'failed')),
    attempts        integer NOT NULL DEFAULT 0,
    -- when the next attempt is due; a worker that claims a delivery pushes it ahead (a lease), so
    -- a worker that dies mid-attempt only delays it
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_status     integer,
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    retry_from      timestamptz NOT NULL DEFAULT now(),   -- retries stop a day after this (redeliver resets it)
    delivered_at    timestamptz,
    UNIQUE (project_id, id),
    UNIQUE (event_id, endpoint_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_list ON webhook_deliveries (project_id, created_at DESC, id DESC);
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, created_at DESC);

CREATE TABLE webhook_attempts (
    delivery_id text NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    attempt     integer NOT NULL,
    status      integer,                                  -- the receiver's HTTP status, if it answered
    error       text,
    duration_ms double precision NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (delivery_id, attempt)
);
