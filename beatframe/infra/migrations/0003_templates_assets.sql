-- 0003: the project's own templates (versioned), assets with licence fields, tracks fetched from
-- a URL, render stages and progress, and billed amounts on usage lines.

-- A project template; its current definition is the highest row of template_versions. Names are
-- unique among a project's live templates and never shadow a built-in (checked by the API).
CREATE TABLE templates (
    id          text PRIMARY KEY CHECK (id LIKE 'tpl\_%'),
    project_id  text NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    env         text NOT NULL CHECK (env IN ('test', 'live')),
    name        text NOT NULL,
    version     integer NOT NULL DEFAULT 1 CHECK (version >= 1),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    deleted_at  timestamptz,
    UNIQUE (project_id, id)
);
CREATE UNIQUE INDEX templates_name ON templates (project_id, env, name) WHERE deleted_at IS NULL;
CREATE INDEX templates_list ON templates (project_id, created_at DESC, id DESC);

-- Every version ever saved, so a render made with version 2 can be traced after version 3.
CREATE TABLE template_versions (
    template_id text NOT NULL REFERENCES templates (id) ON DELETE CASCADE,
    version     integer NOT NULL CHECK (version >= 1),
    definition  jsonb NOT NULL,                            -- a validated beatframe Template
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (template_id, version)
);

-- Bring-your-own media; the licence fields are required and copied into every output that uses it.
CREATE TABLE assets (
    id            text PRIMARY KEY CHECK (id LIKE 'ast\_%'),
    project_id    text NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    env           text NOT NULL CHECK (env IN ('test', 'live')),
    kind          text NOT NULL CHECK (kind IN ('image', 'clip', 'audio')),
    filename      text NOT NULL,
    content_type  text NOT NULL,
    bytes         bigint NOT NULL CHECK (bytes >= 0),
    sha256        text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    object_key    text NOT NULL,
    license       text NOT NULL CHECK (length(license) BETWEEN 1 AND 200),
    attribution   text NOT NULL CHECK (length(attribution) BETWEEN 1 AND 1000),
    rights_holder text NOT NULL CHECK (length(rights_holder) BETWEEN 1 AND 200),
    created_at    timestamptz NOT NULL DEFAULT now(),
    deleted_at    timestamptz,
    UNIQUE (project_id, id)
);
CREATE INDEX assets_list ON assets (project_id, created_at DESC, id DESC);

ALTER TABLE tracks ADD COLUMN source_url text;

ALTER TABLE canvases ADD COLUMN cover_asset_id text,
    ADD FOREIGN KEY (project_id, cover_asset_id) REFERENCES assets (project_id, id);

-- the stage running now; renders.stages holds [{name, status}] for every stage of the flow
ALTER TABLE renders ADD COLUMN stage text,
    -- where it runs: the API's own runner, or a Prefect deployment on a work pool
    ADD COLUMN backend text NOT NULL DEFAULT 'inprocess' CHECK (backend IN ('inprocess', 'deployment'));

-- test-mode renders are priced (amount) but never billed (billed_amount 0)
ALTER TABLE usage_lines ADD COLUMN billed_amount numeric(20, 8) NOT NULL DEFAULT 0;
