"""QGIS plugin entry point of In-between dynamics."""


def classFactory(iface):  # noqa: N802 (QGIS's name)
    """Called by QGIS with the interface, or with None under qgis_process."""
    from .plugin.plugin import InBetweenPlugin

    return InBetweenPlugin(iface)
