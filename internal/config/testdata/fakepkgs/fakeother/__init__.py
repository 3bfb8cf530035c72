from fakeapp.apps import DescribingApp
from fakeapp.filters import RecordingFilter


def make_app(global_conf, **local_conf):
    return DescribingApp("fakeother", global_conf, local_conf)


def make_filter(global_conf, **local_conf):
    return lambda app: RecordingFilter(app, "fakeother")


def not_a_factory():
    pass
