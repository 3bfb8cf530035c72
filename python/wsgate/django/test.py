"""``python -m wsgate.django.test NODE_JSON_FILE [labels/options…]``: what
``wsgate test CONFIG_URI [labels…]`` runs. Builds the application (settings
from the INI file, start-up hooks run) and runs Django's test runner (the
``test`` management command, so --keepdb, --parallel, -k… work), exiting 0
when every test passed and 1 otherwise."""

import sys

from wsgate.django._command import main

if __name__ == "__main__":
    sys.exit(main("wsgate test", ["test"]))
