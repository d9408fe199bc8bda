-- 0004: a render with the canvas or video it makes, as GET /v1/renders reads it (one query per page).
CREATE VIEW render_objects AS
    SELECT r.*, c.id AS canvas_id, v.id AS video_id
    FROM renders r
    LEFT JOIN canvases c ON c.render_id = r.id
    LEFT JOIN videos v ON v.render_id = r.id;
