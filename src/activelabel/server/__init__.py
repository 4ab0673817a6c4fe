"""The labeling app: ``create_app(project_folder)`` gives a FastAPI app; ``activelabel serve`` runs it."""

from activelabel.server.app import create_app

__all__ = ["create_app"]
