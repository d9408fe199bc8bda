-- 0001: the initial schema of the HTTP API (issue 5).
--
-- Conventions:
-- * ids are text with a type prefix (prj_, key_, trk_, rnd_, cnv_, vid_, usg_) from beatframe.db.new_id;
-- * every tenant-owned row carries project_id and env ('test' | 'live'); an object of another
--   project or environment is simply not found;
-- * listings page with ORDER BY created_at DESC, id DESC and a row-comparison cursor
--   (created_at, id) < (%s, %s), served by the *_list indexes below;
-- * references between tenant objects are composite (project_id, x_id) so a canvas can never
--   point at another project's track or render, whatever the application code does.

CREATE TABLE projects (
    id          text PRIMARY KEY CHECK (id LIKE 'prj\_%'),
    name        text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 200),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_keys (
    id          text PRIMARY KEY CHECK (id LIKE 'key\_%'),
    project_id  text NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    env         text NOT NULL CHECK (env IN ('test', 'live')),
    -- the first characters of the secret (e.g. bf_test_AbCd), enough to recognise a key in a list
    prefix      text NOT NULL,
    -- hex sha256 of the whole secret; the secret itself is never stored
    hash        text NOT NULL UNIQUE CHECK (hash ~ '^[0-9a-f]{64}$'),
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);
CREATE INDEX api_keys_list ON api_keys (project_id, created_at DESC, id DESC);

CREATE TABLE tracks (
    id          text PRIMARY KEY CHECK (id LIKE 'trk\_%'),
    project_id  text NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    env         text NOT NULL CHECK (env IN ('test', 'live')),
    filename    text,
    sha256      text CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    bytes       bigint CHECK (bytes >= 0),
    duration    double precision CHECK (duration >= 0),   -- seconds
    object_key  text,
    status      text NOT NULL DEFAULT 'pending',
    created_at  timestamptz NOT NULL DEFAULT now(),
    deleted_at  timestamptz,
    UNIQUE (project_id, id)
);
CREATE INDEX tracks_list ON tracks (project_id, created_at DESC, id DESC);

CREATE TABLE renders (
    id            text PRIMARY KEY CHECK (id LIKE 'rnd\_%'),
    project_id    text NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    env           text NOT NULL CHECK (env IN ('test', 'live')),
    kind          text NOT NULL CHECK (kind IN ('canvas', 'video')),
    status        text NOT NULL DEFAULT 'queued'
                  CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'canceled')),
    progress      double precision NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 1),
    flow_run_id   text,                                   -- the Prefect flow run (a UUID)
    params        jsonb NOT NULL DEFAULT '{}'::jsonb,
    stages        jsonb NOT NULL DEFAULT '[]'::jsonb,
    cost          jsonb,
    error         jsonb,
    created_at    timestamptz NOT NULL DEFAULT now(),
    started_at    timestamptz,
    finished_at   timestamptz,
    heartbeat_at  timestamptz,
    UNIQUE (project_id, id)
);
CREATE INDEX renders_list ON renders (project_id, created_at DESC, id DESC);
-- the watchdog's scan for renders whose runner died (no recent heartbeat)
CREATE INDEX renders_active ON renders (heartbeat_at) WHERE status IN ('queued', 'running');
CREATE INDEX renders_flow_run ON renders (flow_run_id) WHERE flow_run_id IS NOT NULL;

CREATE TABLE canvases (
    id          text PRIMARY KEY CHECK (id LIKE 'cnv\_%'),
    project_id  text NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    env         text NOT NULL CHECK (env IN ('test', 'live')),
    track_id    text NOT NULL,
    render_id   text,
    params      jsonb NOT NULL DEFAULT '{}'::jsonb,
    manifest    jsonb,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (project_id, id),
    FOREIGN KEY (project_id, track_id) REFERENCES tracks (project_id, id),
    FOREIGN KEY (project_id, render_id) REFERENCES renders (project_id, id)
);
CREATE INDEX canvases_list ON canvases (project_id, created_at DESC, id DESC);
CREATE INDEX canvases_track ON canvases (track_id);
CREATE INDEX canvases_render ON canvases (render_id);

CREATE TABLE videos (
    id          text PRIMARY KEY CHECK (id LIKE 'vid\_%'),
    project_id  text NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    env         text NOT NULL CHECK (env IN ('test', 'live')),
    track_id    text NOT NULL,
    canvas_id   text,                                     -- set when made from a canvas
    render_id   text,
    params      jsonb NOT NULL DEFAULT '{}'::jsonb,
    manifest    jsonb,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (project_id, id),
    FOREIGN KEY (project_id, track_id) REFERENCES tracks (project_id, id),
    FOREIGN KEY (project_id, canvas_id) REFERENCES canvases (project_id, id),
    FOREIGN KEY (project_id, render_id) REFERENCES renders (project_id, id)
);
CREATE INDEX videos_list ON videos (project_id, created_at DESC, id DESC);
CREATE INDEX videos_track ON videos (track_id);
CREATE INDEX videos_render ON videos (render_id);

-- Idempotency-Key: a row is claimed (INSERT ... ON CONFLICT DO NOTHING) before the work and
-- completed with the response; response_status IS NULL means "in progress".
CREATE TABLE idempotency_keys (
    project_id       text NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    key              text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    request_hash     text NOT NULL,
    response_status  integer,
    response_body    jsonb,
    created_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (project_id, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

-- one priced line per render stage (beatframe.cost); GET /v1/usage aggregates them
CREATE TABLE usage_lines (
    id          text PRIMARY KEY CHECK (id LIKE 'usg\_%'),
    project_id  text NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    env         text NOT NULL CHECK (env IN ('test', 'live')),
    object_id   text NOT NULL,                            -- the render (or canvas/video) it bills
    stage       text NOT NULL,
    seconds     double precision NOT NULL CHECK (seconds >= 0),
    device      text NOT NULL,
    amount      numeric(20, 8) NOT NULL,
    currency    text NOT NULL,
    day         date NOT NULL DEFAULT current_date,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX usage_lines_day ON usage_lines (project_id, env, day);
CREATE INDEX usage_lines_object ON usage_lines (project_id, object_id);
