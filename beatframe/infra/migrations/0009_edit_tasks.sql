-- 0009: scene edits (POST /v1/genius/scene/edit) are tasks too: a generations row (its request holds
-- the scenes) made by a render of kind 'edit'.

ALTER TABLE renders DROP CONSTRAINT renders_kind_check;
ALTER TABLE renders ADD CONSTRAINT renders_kind_check CHECK (kind IN ('canvas', 'video', 'generation', 'edit'));
