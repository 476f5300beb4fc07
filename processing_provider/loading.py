"""What an algorithm leaves for QGIS when it finishes: styles beside the files it wrote (for anyone who opens
them later, also after qgis_process) and, in the desktop, the loaded layers with their temporal set-up.

Under qgis_process no layer is loaded and the post-processors never run; the styles are written anyway.
"""
from qgis.core import QgsProcessingContext, QgsProcessingLayerPostProcessorInterface

# Post-processors must outlive processAlgorithm: QGIS keeps only a C++ pointer to them.
_KEEP = []


class _FramePostProcessor(QgsProcessingLayerPostProcessorInterface):
    def __init__(self, path, times, j, value_range, style):
        super().__init__()
        self.path, self.times, self.j, self.value_range, self.style = path, times, j, value_range, style

    def postProcessLayer(self, layer, context, feedback):  # noqa: N802
        from ..plugin.layers import (FRAMES_GROUP, frame_layer_name, frame_ranges, move_to_group, play_frames,
                                     set_frame_time, style_frame)

        start, end = frame_ranges(self.times)[self.j]
        style_frame(layer, self.value_range, self.style)
        set_frame_time(layer, start, end)
        layer.setName(frame_layer_name(self.path, start))
        move_to_group(layer, context.project(), FRAMES_GROUP)
        if self.j == len(self.times) - 1:  # QGIS loads results in path order: the frames are all in now
            play_frames(context.project(), self.times)


class _FieldPostProcessor(QgsProcessingLayerPostProcessorInterface):
    def __init__(self, times):
        super().__init__()
        self.times = times

    def postProcessLayer(self, layer, context, feedback):  # noqa: N802
        from ..plugin.layers import move_to_top, play, style_field_layer

        step = (self.times[1] - self.times[0]).total_seconds() if len(self.times) > 1 else None
        style_field_layer(layer, step_seconds=step)
        move_to_top(layer, context.project())
        if step:  # the field's steps, joined to the frames' range when they are loaded already
            play(context.project(), self.times[0], self.times[-1], step, extend=True)


def frames_written(paths, times, context):
    """Write each frame's style (frame_NNN.qml beside it: the colours QGIS uses whenever the file is opened)
    and load the frames when the algorithm finishes: a group of temporal layers, styled alike, the Temporal
    Controller stepping through them. Returns the style files."""
    from ..plugin.layers import frame_layer_name, frame_style_of, shared_value_range, write_frame_styles

    value_range = shared_value_range(paths)
    style = frame_style_of(paths[0]) if paths else "grey"
    qmls = write_frame_styles(paths, times, style, value_range)
    for j, path in enumerate(paths):
        details = QgsProcessingContext.LayerDetails(frame_layer_name(path, times[j]), context.project(),
                                                   "OUTPUT_LAYERS")
        processor = _FramePostProcessor(path, times, j, value_range, style)
        _KEEP.append(processor)
        details.setPostProcessor(processor)
        context.addLayerToLoadOnCompletion(path, details)
    return qmls


def field_written(path, times, context):
    """Save the arrow style as the GeoPackage's default style (layer_styles) and, when the field is loaded
    on completion, style it the same way and let it play with the frames. ``times``: the N+1 frame times."""
    from ..plugin.layers import FIELD_LAYER_NAME, embed_field_style

    step = (times[1] - times[0]).total_seconds() if len(times) > 1 else None
    if not embed_field_style(path, step_seconds=step):
        return False
    if context.willLoadLayerOnCompletion(path):
        details = context.layerToLoadOnCompletionDetails(path)
        details.name = FIELD_LAYER_NAME
        processor = _FieldPostProcessor(list(times))
        _KEEP.append(processor)
        details.setPostProcessor(processor)
    return True
