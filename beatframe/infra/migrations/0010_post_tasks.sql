-- 0010: post-production steps (POST /v1/genius/v2v/transform, /inpaint/process) are tasks too, made
-- by renders of kind 'post'; registered entities for the consistency tracker.

ALTER TABLE renders DROP CONSTRAINT renders_kind_check;
ALTER TABLE renders ADD CONSTRAINT renders_kind_check
    CHECK (kind IN ('canvas', 'video', 'generation', 'edit', 'post'));

CREATE TABLE entities (
    id          text PRIMARY KEY CHECK (id LIKE 'ent\_%'),
    project_id  text NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    env         text NOT NULL CHECK (env IN ('test', 'live')),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    entity_type text NOT NULL,
    object_key  text NOT NULL,                                -- the reference image in the object store
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (project_id, id)
);
CREATE INDEX entities_list ON entities (project_id, created_at DESC, id DESC);
