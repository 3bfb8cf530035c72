"""Fake PasteDeploy factories: each app answers with a JSON description of
itself and of the filters the request went through, so that two loaders can
be compared by the response alone."""
