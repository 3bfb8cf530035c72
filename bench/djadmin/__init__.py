"""The benchmark's realistic Django case: the admin's change list of 100 rows from SQLite, logged in.

bench/run.py creates and fills the database once per run (`python -m djadmin.setup`), logs in once through the
real login form of the first server it starts, and passes the session cookie to wrk; every server serves this
project with the same settings and the same database file.
"""
