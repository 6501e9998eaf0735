"""The admin dashboard at ``{prefix}/admin/`` and the browser client at ``{prefix}/static/``."""

from .blueprint import create_admin_blueprint
from .client import create_client_blueprint

__all__ = ["create_admin_blueprint", "create_client_blueprint"]
