from fakeapp.apps import DescribingApp


def application(global_conf, **local_conf):
    """call:mywiki.main:application from PasteDeploy's documentation."""
    return DescribingApp("wiki", global_conf, local_conf)
