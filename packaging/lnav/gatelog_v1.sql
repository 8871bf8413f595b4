-- gatelog views for lnav, executed at start-up from the format's directory.
-- lnav 0.11 cannot address elements of a JSON array from a log format, and the
-- errno, phase and peer of a gatelog.v1 record live in its "attempts" array; these
-- views unnest it with SQLite's json_each(). Records now also carry the last failed
-- attempt's errno_name and phase at the top level (columns of gatelog_v1 itself);
-- these views also serve records of older modules, which lack them.

-- One row per attempt (try = 1, 2, ... in the order NGINX made them).
CREATE VIEW IF NOT EXISTS gatelog_v1_attempts AS
SELECT g.log_line, g.log_time, g.log_level, g.status, g.method, g.uri, g.upstream,
       a.key + 1 AS try,
       json_extract(a.value, '$.peer') AS peer,
       json_extract(a.value, '$.phase') AS phase,
       json_extract(a.value, '$.errno') AS errno,
       json_extract(a.value, '$.errno_name') AS errno_name,
       json_extract(a.value, '$.event') AS event,
       json_extract(a.value, '$.level') AS nginx_level,
       json_extract(a.value, '$.message') AS message,
       json_extract(a.value, '$.status') AS attempt_status,
       json_extract(a.value, '$.connect_ms') AS connect_ms,
       json_extract(a.value, '$.header_ms') AS header_ms,
       json_extract(a.value, '$.response_ms') AS response_ms
  FROM gatelog_v1 AS g, json_each(g.attempts) AS a;

-- One row per record, with the last failed attempt's peer, phase and errno (the
-- values of $gatelog_errno / $gatelog_phase). A failed attempt is one with an event.
CREATE VIEW IF NOT EXISTS gatelog_v1_records AS
SELECT g.log_line, g.log_time, g.log_level, g.status, g.origin, g.recovered,
       g.method, g.uri, g.client, g.server, g.upstream, g.request_id, g.conn,
       g.request_time_ms,
       f.peer, f.phase, f.errno, f.errno_name, f.event,
       json_array_length(g.attempts) AS tries
  FROM gatelog_v1 AS g
  LEFT JOIN (SELECT log_line, max(try) AS try, peer, phase, errno, errno_name, event
               FROM gatelog_v1_attempts
              WHERE event IS NOT NULL
              GROUP BY log_line) AS f
    ON f.log_line = g.log_line;
