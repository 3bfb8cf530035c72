class RecordingFilter:
    """Appends its label to environ['fake.filters'] and calls the app."""

    def __init__(self, app, label):
        self.app = app
        self.label = label

    def __call__(self, environ, start_response):
        environ.setdefault("fake.filters", []).append(self.label)
        return self.app(environ, start_response)


def _label(kind, local_conf):
    extra = ",".join("%s=%s" % kv for kv in sorted(local_conf.items()))
    return kind + ("(" + extra + ")" if extra else "")


def make_caps(global_conf, **local_conf):
    return lambda app: RecordingFilter(app, _label("caps", local_conf))


def make_tag(global_conf, **local_conf):
    return lambda app: RecordingFilter(app, _label("tag", local_conf))


def make_wrap(app, global_conf, **local_conf):
    return RecordingFilter(app, _label("wrap", local_conf))
