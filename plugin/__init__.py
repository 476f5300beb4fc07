"""QGIS-side glue: plugin class, dependency check, layer styling and temporal set-up."""
