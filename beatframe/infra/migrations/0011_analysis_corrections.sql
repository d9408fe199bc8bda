-- 0011: user corrections of a track's analysis (PATCH /v1/tracks/{id}/analysis, issue 14).
--
-- analysis_hints holds the corrections (beatframe.music.schemas.AnalysisHints as JSON: bpm,
-- downbeat, meter, beats, beat_positions; NULL for none) that the stored analysis and every later
-- render of the track apply; analysis_version counts the analyses: 1 is the estimate computed
-- after upload, and each correction makes the next. An analysis that finishes stores its result
-- only while its version is still the track's, so a late first analysis never overwrites a
-- correction made meanwhile.
ALTER TABLE tracks
    ADD COLUMN analysis_hints   jsonb CHECK (analysis_hints IS NULL OR jsonb_typeof(analysis_hints) = 'object'),
    ADD COLUMN analysis_version integer NOT NULL DEFAULT 1 CHECK (analysis_version >= 1);
