"""open-metrics' clients write to Acme Notes through the scope's open-metrics key.

Pages or services that use open-metrics' browser or node client (``gsabran/open-metrics-client-*``)
call ``/v1/<route>?q=<JSON>`` at the root (the node client drops any path of its server URL) and
can send no key: neither a header nor ``?key=`` fits in the URLs they build. So ``create_app``
serves open-metrics' routes at ``/v1`` and names the scope's open-metrics key (permission
``openmetrics``) in ``UMETRICS_OPENMETRICS_KEY``: keyless calls act with it. That key is public
like the browser's write key: it writes open-metrics calls into the ``acme`` scope only, links
only visitors that are not identified yet, and cannot set an identified user's properties. The
host's authorizer still grants nothing to visitors.

``seed-demo`` creates the key and saves it to ``instance/openmetrics-key.txt``; ``create_app``
loads that file when neither the app config nor the environment sets the key.
"""

from __future__ import annotations

from flask import Flask

from .key_files import load_key_file, write_key_file

KEY_SETTING = "UMETRICS_OPENMETRICS_KEY"
KEY_FILE = "openmetrics-key.txt"
#: Where open-metrics' clients call: the root, as the original server serves them.
PATH = "/v1"


def configure(app: Flask) -> None:
    """Serve open-metrics' routes at ``/v1`` with the saved key (config and environment win).
    Call before ``umetrics.init_app`` reads the settings."""
    app.config.setdefault("UMETRICS_ENABLE_OPENMETRICS_API", True)
    app.config.setdefault("UMETRICS_OPENMETRICS_PATH", PATH)
    load_key_file(app, KEY_FILE, KEY_SETTING)


def write_key(instance_path: str, key: str) -> str:
    """Save the open-metrics key where ``create_app`` finds it; the path."""
    about = (
        "open-metrics clients' key (permission openmetrics), written by `seed-demo`.\n"
        "create_app loads it when UMETRICS_OPENMETRICS_KEY is not set; it is public: it writes\n"
        "open-metrics calls into the acme scope only."
    )
    return write_key_file(instance_path, KEY_FILE, KEY_SETTING, key, about)
