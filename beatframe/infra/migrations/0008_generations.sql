-- 0008: prompt generations (the reference video-generation API's tasks: POST /v1/generate), the
-- renders that make them, and webhook endpoints that belong to one task (its webhook_url).

ALTER TABLE renders DROP CONSTRAINT renders_kind_check;
ALTER TABLE renders ADD CONSTRAINT renders_kind_check CHECK (kind IN ('canvas', 'video', 'generation'));

CREATE TABLE generations (
    id          text PRIMARY KEY CHECK (id LIKE 'gen\_%'),    -- the reference API's task_id
    project_id  text NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    env         text NOT NULL CHECK (env IN ('test', 'live')),
    render_id   text NOT NULL,
    request     jsonb NOT NULL,                               -- the validated request, with its seed
    batch_id    text,                                         -- bat_…: POST /v1/genius/batch/submit
    manifest    jsonb,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (project_id, id),
    FOREIGN KEY (project_id, render_id) REFERENCES renders (project_id, id)
);
CREATE INDEX generations_render ON generations (render_id);

-- A task's webhook_url is an endpoint of its own: subscribed to task.* events of that task only,
-- signed with a secret the POST /v1/generate answer shows once, hidden from /v1/webhook_endpoints.
ALTER TABLE webhook_endpoints ADD COLUMN task_id text;

CREATE OR REPLACE VIEW render_objects AS
    SELECT r.*, c.id AS canvas_id, v.id AS video_id, g.id AS generation_id
    FROM renders r
    LEFT JOIN canvases c ON c.render_id = r.id
    LEFT JOIN videos v ON v.render_id = r.id
    LEFT JOIN generations g ON g.render_id = r.id;
