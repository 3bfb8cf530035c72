-- wrk script for the upload case: every request POSTs the same 10 MiB body.
-- wrk.format adds the Content-Length header because a body is set.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/octet-stream"
wrk.body = string.rep("u", 10 * 1024 * 1024)
