"""Layers loaded into the desktop project when an algorithm finishes, with their temporal set-up.

Under qgis_process nothing is loaded and these post-processors never run.
"""
from qgis.core import QgsProcessingContext, QgsProcessingLayerPostProcessorInterface

# Post-processors must outlive processAlgorithm: QGIS keeps only a C++ pointer to them.
_KEEP = []

FRAMES_GROUP = "In-between frames"


class _FramePostProcessor(QgsProcessingLayerPostProcessorInterface):
    def __init__(self, start, end, value_range):
        super().__init__()
        self.start, self.end, self.value_range = start, end, value_range

    def postProcessLayer(self, layer, context, feedback):  # noqa: N802
        from ..plugin.layers import move_to_group, set_frame_time, style_frame

        style_frame(layer, self.value_range)
        set_frame_time(layer, self.start, self.end)
        move_to_group(layer, context.project(), FRAMES_GROUP)


class _FieldPostProcessor(QgsProcessingLayerPostProcessorInterface):
    def postProcessLayer(self, layer, context, feedback):  # noqa: N802
        from ..plugin.layers import style_field_layer

        style_field_layer(layer)


def load_frames_on_completion(paths, times, context, value_range=None):
    """Frame j is active over [t_j, t_j+1); the last frame over [t_N, t_N + Δt)."""
    from ..plugin.layers import shared_value_range

    value_range = value_range or shared_value_range(paths)
    step = times[1] - times[0] if len(times) > 1 else None
    for j, path in enumerate(paths):
        end = times[j + 1] if j + 1 < len(times) else times[j] + step
        details = QgsProcessingContext.LayerDetails(f"frame {j:03d} {times[j]:%Y-%m-%d %H:%M:%S}",
                                                   context.project(), "OUTPUT_LAYERS")
        processor = _FramePostProcessor(times[j], end, value_range)
        _KEEP.append(processor)
        details.setPostProcessor(processor)
        context.addLayerToLoadOnCompletion(path, details)


def load_field_on_completion(path, context):
    if not context.willLoadLayerOnCompletion(path):
        return
    details = context.layerToLoadOnCompletionDetails(path)
    processor = _FieldPostProcessor()
    _KEEP.append(processor)
    details.setPostProcessor(processor)
