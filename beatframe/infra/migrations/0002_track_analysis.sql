-- A track's analysis (schema beatframe.analysis/1), computed by the analyze_track flow after upload.
ALTER TABLE tracks
    ADD COLUMN analysis        jsonb,
    ADD COLUMN analysis_status text NOT NULL DEFAULT 'pending'
        CHECK (analysis_status IN ('pending', 'succeeded', 'failed')),
    ADD COLUMN analysis_error  jsonb;
