# Same as compat_settings, a separate module so a test can import it fresh.
from compat_settings import *  # noqa: F401,F403
