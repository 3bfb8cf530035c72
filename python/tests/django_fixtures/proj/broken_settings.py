SECRET_KEY = "x"
import this_module_does_not_exist  # noqa: E402,F401
