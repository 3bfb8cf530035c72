"""``python -m wsgate.django.manage NODE_JSON_FILE ARGS…``: what ``wsgate
manage CONFIG_URI ARGS…`` runs. Builds the application (settings from the
INI file, start-up hooks run) and runs the Django management command ARGS
names, exiting with its status."""

import sys

from wsgate.django._command import main

if __name__ == "__main__":
    sys.exit(main("wsgate manage", []))
