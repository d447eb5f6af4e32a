-- Room on every page for its rows' claimed versions: the claim's UPDATE
-- (status, which the claim index's predicate reads, so never a HOT update)
-- then writes the new version on the row's own page, and its WAL record
-- holds only the changed middle of the row instead of the whole row (text
-- included) and a second page. A claim takes a run of positions, all the
-- rows of a page at once, so the page must hold both versions of all its
-- rows. Pages written before keep their layout: only new rows get the room.
ALTER TABLE messages SET (fillfactor = 45);
