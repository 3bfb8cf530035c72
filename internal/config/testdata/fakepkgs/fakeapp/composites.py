def make_switch(loader, global_conf, choose, **local_conf):
    """A composite: serves the application named by the setting `choose`
    names (one level of indirection, like urlmap)."""
    return loader.get_app(local_conf[choose], global_conf=global_conf)


def make_pipeline(loader, global_conf, pipeline, **local_conf):
    """The pipeline composite of PasteDeploy's documentation ("Defining
    Factories"): filters and an app named in one setting."""
    names = pipeline.split()
    filters = [loader.get_filter(n) for n in names[:-1]]
    app = loader.get_app(names[-1])
    filters.reverse()
    for f in filters:
        app = f(app)
    return app
