"""Large pools: features on disk scored chunk by chunk in bounded memory, locally or on a Dask cluster."""

from activelabel.scale.pool import create_features, open_features, select_on_disk

__all__ = ["create_features", "open_features", "select_on_disk", "connect"]


def __getattr__(name: str):
    if name == "connect":  # dask.distributed is imported only when a cluster is asked for
        from activelabel.scale.cluster import connect

        return connect
    raise AttributeError(name)
