"""Stand-ins for the distributions PasteDeploy's documentation examples
name (Authentication, BlogApp, MyApp, MyBlog, FilterEgg)."""
from fakeapp.apps import DescribingApp
from fakeapp.filters import RecordingFilter, _label


def make_auth(app, global_conf, **local_conf):
    return RecordingFilter(app, _label("auth", local_conf))


def make_blog(global_conf, **local_conf):
    return DescribingApp("blog", global_conf, local_conf)


def make_myapp(global_conf, **local_conf):
    return DescribingApp("myapp", global_conf, local_conf)


def make_ob2(global_conf, **local_conf):
    return DescribingApp("ob2", global_conf, local_conf)


def make_filter2(global_conf, **local_conf):
    return lambda app: RecordingFilter(app, _label("filter2", local_conf))
